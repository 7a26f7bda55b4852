"""The workbench over HTTP (Starlette's test client): nothing is anonymous, every POST needs its
CSRF token, a viewer reads and cannot settle, a settlement is the CLI's own operation with the
signed-in account as actor, and what the pages show is escaped."""

from __future__ import annotations

import csv
import io

import pytest

from poam_sync.web import security

from .conftest import PASSWORD, Bench, csrf


@pytest.mark.parametrize("path", ["/", "/items", "/items/x", "/conflicts", "/problems"])
def test_every_page_asks_to_sign_in_first(bench: Bench, path: str) -> None:
    answer = bench.client.get(path, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")


def test_signing_in_sets_a_safe_session_cookie_and_goes_on(bench: Bench) -> None:
    token = csrf(bench.client.get("/login?next=/conflicts").text)
    answer = bench.client.post(
        "/login",
        data={"name": "admin", "password": PASSWORD, "csrf_token": token, "next": "/conflicts"},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/conflicts"
    cookie = next(
        v for k, v in answer.headers.multi_items() if k == "set-cookie" and "poam_session" in v
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    # a full URL or another site is never where a sign-in leads
    bench.client.cookies.clear()
    token = csrf(bench.client.get("/login").text)
    answer = bench.client.post(
        "/login",
        data={"name": "admin", "password": PASSWORD, "csrf_token": token, "next": "//evil.example"},
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/"


def test_a_wrong_password_is_refused_and_repeated_failures_are_slowed(bench: Bench) -> None:
    assert bench.sign_in("admin", "wrong password!") == 401
    for _ in range(security.MAX_FAILURES - 1):
        bench.sign_in("admin", "wrong password!")
    token = csrf(bench.client.get("/login").text)
    answer = bench.client.post(
        "/login", data={"name": "admin", "password": PASSWORD, "csrf_token": token}
    )
    assert answer.status_code == 429 and int(answer.headers["retry-after"]) > 0
    assert "Too many failed attempts" in answer.text


def test_a_form_without_its_csrf_token_is_refused(bench: Bench) -> None:
    assert bench.sign_in("admin") == 303
    answer = bench.client.post(
        f"/conflicts/{bench.conflict_id}/settle",
        data={"choice": "jira", "reason": "engineer is right"},
    )
    assert answer.status_code == 403
    forged = bench.client.post(
        f"/conflicts/{bench.conflict_id}/settle",
        data={"choice": "jira", "reason": "x", "csrf_token": "0" * 64},
    )
    assert forged.status_code == 403
    no_login = bench.client.post("/login", data={"name": "admin", "password": PASSWORD})
    assert no_login.status_code == 403
    with bench.store.read() as tx:
        assert tx.conflict(bench.conflict_id).state == "open"


def test_a_post_from_another_site_is_refused(bench: Bench) -> None:
    assert bench.sign_in("admin") == 303
    token = csrf(bench.client.get("/conflicts").text)
    answer = bench.client.post(
        f"/conflicts/{bench.conflict_id}/settle",
        data={"choice": "jira", "reason": "x", "csrf_token": token},
        headers={"origin": "https://evil.example"},
    )
    assert answer.status_code == 403


def test_a_viewer_sees_no_settle_form_and_its_post_is_refused(bench: Bench) -> None:
    assert bench.sign_in("viewer") == 303
    page = bench.client.get("/conflicts")
    assert page.status_code == 200 and "Engineer&#39;s title" in page.text
    assert "/settle" not in page.text and "a resolver or an admin settles them" in page.text
    token = csrf(page.text)
    answer = bench.client.post(
        f"/conflicts/{bench.conflict_id}/settle",
        data={"choice": "jira", "reason": "x", "csrf_token": token},
    )
    assert answer.status_code == 403
    with bench.store.read() as tx:
        assert tx.conflict(bench.conflict_id).state == "open"


def test_a_resolver_settles_with_a_reason_as_itself(bench: Bench) -> None:
    assert bench.sign_in("resolver") == 303
    page = bench.client.get("/conflicts")
    assert "policy for title: <b>manual</b>" in page.text and "by bob@example.com" in page.text
    token = csrf(page.text)
    url = f"/conflicts/{bench.conflict_id}/settle"
    no_reason = bench.client.post(url, data={"choice": "jira", "reason": " ", "csrf_token": token})
    assert no_reason.status_code == 400 and "a settlement must say why" in no_reason.text
    answer = bench.client.post(
        url,
        data={"choice": "jira", "reason": "the engineer split it per host", "csrf_token": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert "settled" in bench.client.get(answer.headers["location"]).text
    with bench.store.read() as tx:
        row = tx.conflict(bench.conflict_id)
        assert (row.state, row.taken_from, row.resolved_by) == ("resolved", "jira", "resolver")
    assert bench.store.item("acme", "V-1").title == "Engineer's title"
    (entry,) = [r for r in bench.store.log() if "settled" in (r.reason or "")]
    assert (entry.source, entry.actor) == ("web", "resolver")
    again = bench.client.post(url, data={"choice": "local", "reason": "again", "csrf_token": token})
    assert again.status_code == 400 and "already resolved" in again.text
    timeline = bench.client.get(f"/items/{bench.items[0].uuid}").text
    assert "the engineer split it per host" in timeline and "resolver" in timeline


def test_a_typed_value_settles_too(bench: Bench) -> None:
    assert bench.sign_in("admin") == 303
    token = csrf(bench.client.get("/conflicts").text)
    answer = bench.client.post(
        f"/conflicts/{bench.conflict_id}/settle",
        data={
            "choice": "value",
            "value": "Agreed title",
            "reason": "agreed in review",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert bench.store.item("acme", "V-1").title == "Agreed title"


def test_pages_escape_what_they_show_and_send_security_headers(bench: Bench) -> None:
    assert bench.sign_in("viewer") == 303
    listing = bench.client.get("/items?q=script")
    assert "<script>" not in listing.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold" in listing.text
    csp = listing.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp and "script-src" not in csp
    assert listing.headers["x-content-type-options"] == "nosniff"
    assert listing.headers["x-frame-options"] == "DENY"
    assert "<script" not in bench.client.get(f"/items/{bench.items[-1].uuid}").text


def test_the_items_table_filters_sorts_and_pages(bench: Bench) -> None:
    assert bench.sign_in("viewer") == 303
    page = bench.client.get("/items?status=open&sort=due&dir=desc").text
    assert "12 found" in page and "Page 1 of 1" in page
    overdue = bench.client.get("/items?overdue=1").text  # today is 2026-03-01
    assert "5 found" not in overdue and "4 found" in overdue  # V-1, V-6, V-7, V-12
    assert "V-2<" not in overdue and "V-6<" in overdue and "V-12<" in overdue
    assert "1 found" in bench.client.get("/items?conflict=1").text
    assert "5 found" in bench.client.get("/items?owner=owner1").text
    assert bench.client.get("/items?sort=nonsense").status_code == 400
    assert bench.client.get("/items?status=maybe").status_code == 400


def test_the_csv_export_holds_the_filtered_view(bench: Bench) -> None:
    assert bench.sign_in("viewer") == 303
    answer = bench.client.get("/items.csv?owner=owner1")
    assert answer.status_code == 200 and "attachment" in answer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert len(rows) - 1 == 5
    xlsx = bench.client.get("/items.xlsx?status=open")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"


def test_the_item_page_shows_fields_links_and_the_timeline(bench: Bench) -> None:
    assert bench.sign_in("viewer") == 303
    page = bench.client.get(f"/items/{bench.items[0].uuid}").text
    assert 'href="https://jira.example.com/browse/POAM-1"' in page and ">POAM-1</a>" in page
    assert "SI-2" in page and "Found by the scanner on host-1." in page
    assert "isso@example.com</b> via import" in page
    assert bench.client.get("/items/nope").status_code == 404


def test_the_dashboard_and_problems(bench: Bench) -> None:
    assert bench.sign_in("viewer") == 303
    page = bench.client.get("/").text
    assert "<svg" in page and "12</b>open of 13 items" in page
    assert "past FedRAMP deadline" in page
    problems = bench.client.get("/problems").text
    assert "add owner2@example.gov to users: in mappings/servicenow.yaml" in problems


def test_a_disabled_account_is_signed_out_at_its_next_click(bench: Bench) -> None:
    assert bench.sign_in("admin") == 303
    assert bench.client.get("/", follow_redirects=False).status_code == 200
    with bench.store.begin() as tx:
        tx.disable_user("admin")
    assert bench.client.get("/", follow_redirects=False).status_code == 303


def test_a_trusted_proxy_header_signs_in_only_from_the_proxy(bench: Bench) -> None:
    from starlette.testclient import TestClient

    from poam_sync.web import WebSettings, create_app

    def client(proxies: tuple[str, ...]) -> TestClient:
        settings = WebSettings(trusted_user_header="X-Remote-User", trusted_proxies=proxies)
        return TestClient(create_app(bench.store, settings))

    # the test client's peer address is "testclient"
    with client(("testclient",)) as trusted:
        page = trusted.get("/", headers={"X-Remote-User": "viewer"}, follow_redirects=False)
        assert page.status_code == 200 and "viewer <small>(viewer)</small>" in page.text
        unknown = trusted.get("/", headers={"X-Remote-User": "nobody"}, follow_redirects=False)
        assert unknown.status_code == 303
    with client(("10.0.0.5",)) as untrusted:
        page = untrusted.get("/", headers={"X-Remote-User": "admin"}, follow_redirects=False)
        assert page.status_code == 303  # the header of anyone but the proxy is ignored


def test_over_tls_cookies_are_secure_and_hsts_is_sent(bench: Bench) -> None:
    from starlette.testclient import TestClient

    from poam_sync.web import create_app

    with TestClient(create_app(bench.store), base_url="https://testserver") as tls:
        page = tls.get("/login")
        assert "Secure" in page.headers["set-cookie"]
        assert page.headers["strict-transport-security"].startswith("max-age=")
        token = csrf(page.text)
        answer = tls.post(
            "/login",
            data={"name": "admin", "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
        cookie = answer.headers["set-cookie"]
        assert "poam_session" in cookie and "Secure" in cookie and "HttpOnly" in cookie
