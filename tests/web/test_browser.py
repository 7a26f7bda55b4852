"""The workbench in a real browser (Chromium under Playwright) on a synced demo store: an admin
signs in, reads the problem and its fix, filters, opens an item and finds its Jira link,
settles the conflict with a reason and finds it in the timeline and the change log, and the
next cycle pushes it to Jira; a viewer is refused; a form without its token is refused; a title
holding ``<script>`` is shown as text.

Skipped where /usr/bin/chromium is missing, except under CI (``CI=true``), where that fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from poam_sync.model import with_fields

from .browser import CHROMIUM, chromium, in_ci
from .synced import PASSWORD, SYSTEM, Synced, synced_workbench

# one worker starts Chromium and the synced workbench once for the whole module
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]

if not CHROMIUM.exists():
    if in_ci():
        pytest.fail(f"{CHROMIUM} is required in CI (apt-get install chromium)", pytrace=False)
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    with synced_workbench(tmp_path_factory.mktemp("synced")) as s:
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Any, synced: Synced) -> Iterator[Any]:
    context = browser.new_context(base_url=synced.url, viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield tab
    context.close()
    assert errors == [], errors  # no CSP violation, no failing resource


def sign_in(page: Any, name: str) -> None:
    page.goto("/")
    assert "/login" in page.url
    page.get_by_label("Account").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")


def test_an_admin_reviews_settles_and_the_next_cycle_pushes_it(page: Any, synced: Synced) -> None:
    sign_in(page, "admin@example.gov")
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    assert page.locator("svg.chart").count() == 1

    # the problem, with its fix spelled out
    page.get_by_role("link", name="Problems", exact=True).click()
    problem = page.locator("article.problem").first.inner_text()
    assert "'On Hold'" in problem and "Fix: add `On Hold:" in problem

    # filter, then open the conflicted item from the table
    page.get_by_role("link", name="Items", exact=True).click()
    page.get_by_label("Search").fill(synced.conflicted.poam_id)
    page.get_by_label("has a conflict").check()
    page.get_by_role("button", name="Filter").click()
    assert "1 found" in page.locator("h1").inner_text()
    page.get_by_role("link", name=synced.conflicted.poam_id, exact=True).click()
    jira = page.get_by_role("link", name=synced.jira_key, exact=True)
    assert jira.get_attribute("href") == f"{synced.jira.url}/browse/{synced.jira_key}"

    # settle it: the engineer's title, with a reason
    page.get_by_role("link", name="Conflicts", exact=True).click()
    conflict = page.locator("article.conflict").first
    assert synced.title_here in conflict.inner_text() and synced.title_jira in conflict.inner_text()
    assert "by bob@example.com" in conflict.inner_text()
    conflict.get_by_label("the value in jira").check()
    conflict.get_by_label("Reason (kept in the change log)").fill("split per host is the plan")
    conflict.get_by_role("button").click()
    assert "settled" in page.get_by_role("status").inner_text()

    # in the item's timeline, by the signed-in account, and in the change log
    page.goto(f"/items/{synced.conflicted.uuid}")
    timeline = page.locator("ol.timeline li").first.inner_text()
    assert "admin@example.gov" in timeline and "split per host is the plan" in timeline
    (entry,) = [r for r in synced.store.log() if "split per host is the plan" in (r.reason or "")]
    assert (entry.actor, entry.source, entry.new_value) == (
        "admin@example.gov",
        "web",
        synced.title_jira,
    )
    assert synced.store.verify_log().ok

    # the next cycle pushes the choice: both sides agree, nothing is open
    synced.engine.run_cycle()
    assert synced.jira.sim.issue(synced.jira_key)["fields"]["summary"] == synced.title_jira
    with synced.store.read() as tx:
        assert tx.conflicts(state="open") == []


def test_a_viewer_gets_no_settle_button_and_its_post_is_refused(page: Any, synced: Synced) -> None:
    with synced.store.begin() as tx:
        item = tx.get(SYSTEM, synced.conflicted.poam_id)
        assert item is not None
        conflict = tx.open_conflict(
            item_uuid=item.uuid,
            connector="jira",
            field="description",
            baseline="a",
            local=item.description,
            remote="b",
            remote_actor="bob@example.com",
            remote_changed_at=None,
        )
    sign_in(page, "viewer@example.gov")
    page.goto("/conflicts")
    assert page.locator("article.conflict").count() >= 1
    assert page.get_by_role("button", name="Settle").count() == 0
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    answer = page.request.post(
        f"/conflicts/{conflict.id}/settle",
        form={"choice": "jira", "reason": "viewer tries", "csrf_token": token},
    )
    assert answer.status == 403
    with synced.store.read() as tx:
        assert tx.conflict(conflict.id).state == "open"


def test_a_form_without_its_token_is_refused(page: Any, synced: Synced) -> None:
    sign_in(page, "admin@example.gov")
    page.goto("/conflicts")
    before = len(synced.store.log())
    if page.locator("form.settle").count():
        page.locator("form.settle input[name=csrf_token]").first.evaluate("e => e.remove()")
    answer = page.request.post("/conflicts/1/settle", form={"choice": "local", "reason": "x"})
    assert answer.status == 403
    assert len(synced.store.log()) == before


def test_a_title_with_a_script_renders_as_text(page: Any, synced: Synced, tmp_path: Path) -> None:
    hostile = "<script>window.pwned = 1</script><img src=x onerror=alert(1)>"
    with synced.store.begin() as tx:
        item = tx.get(SYSTEM, synced.conflicted.poam_id)
        assert item is not None
        tx.save(with_fields(item, {"title": hostile}), source="cli", actor="t", reason="xss")
    sign_in(page, "viewer@example.gov")
    page.goto(f"/items?q={synced.conflicted.poam_id}")
    assert hostile in page.locator("td.title").first.inner_text()
    page.goto(f"/items/{synced.conflicted.uuid}")
    assert hostile in page.locator(".title-line").inner_text()
    assert page.evaluate("() => window.pwned") is None
    assert page.locator("main img").count() == 0
