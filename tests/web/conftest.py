"""A workbench on a small store: items, a conflict, a problem, and one account per role."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import pytest
from starlette.testclient import TestClient

from poam_sync.model import PoamItem
from poam_sync.store import LinkRow, Role, Store
from poam_sync.web import WebSettings, create_app
from poam_sync.web.accounts import add_account
from tests.sync.conftest import poam

PASSWORD = "correct horse battery"
TODAY = date(2026, 3, 1)


def item(n: int, **over: object) -> PoamItem:
    """The sync suite's item, with due dates and owners spread over the months and three owners."""
    values: dict[str, object] = {
        "detected_on": "2026-01-01",
        "scheduled_completion_date": None,
        "due_date": f"2026-0{1 + n % 6}-15",
        "owner": {"email": f"owner{n % 3}@example.gov", "name": f"Owner {n % 3}"},
    }
    values.update(over)
    return poam(n, **values)


@dataclass
class Bench:
    store: Store
    client: TestClient
    conflict_id: int
    items: list[PoamItem]

    def sign_in(self, name: str, password: str = PASSWORD) -> int:
        token = csrf(self.client.get("/login").text)
        answer = self.client.post(
            "/login",
            data={"name": name, "password": password, "csrf_token": token},
            follow_redirects=False,
        )
        return answer.status_code


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def fill(store: Store) -> tuple[list[PoamItem], int]:
    items = [item(n) for n in range(1, 13)]
    items.append(item(13, title="<script>alert('x')</script> & <b>bold</b>", status="completed"))
    with store.begin() as tx:
        for i in items:
            tx.save(i, source="import", actor="isso@example.com", reason="test")
        tx.set_link(
            LinkRow(
                item_uuid=items[0].uuid,
                connector="jira",
                remote_id="10001",
                remote_key="POAM-1",
                url="https://jira.example.com/browse/POAM-1",
            )
        )
        tx.set_baselines(items[0].uuid, "jira", {"title": "Weakness number 1"})
        row = tx.open_conflict(
            item_uuid=items[0].uuid,
            connector="jira",
            field="title",
            baseline="Weakness number 1",
            local="Weakness number 1",
            remote="Engineer's title",
            remote_actor="bob@example.com",
            remote_changed_at=None,
        )
        tx.report_problem(
            item_uuid=items[1].uuid,
            connector="servicenow",
            field="owner",
            code="unknown_user",
            message="no ServiceNow user has the e-mail owner2@example.gov",
            hint="add owner2@example.gov to users: in mappings/servicenow.yaml",
        )
    return items, row.id


def accounts(store: Store) -> None:
    roles: tuple[Role, ...] = ("viewer", "resolver", "admin")
    for role in roles:
        add_account(store, role, role, PASSWORD)


@pytest.fixture(scope="module")
def _hashed(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One store with the accounts (argon2 is slow on purpose), copied for each test."""
    path = tmp_path_factory.mktemp("accounts") / "accounts.db"
    with Store.open(f"sqlite:///{path}") as store:
        accounts(store)
    return str(path)


@pytest.fixture
def bench(tmp_path: object, _hashed: str, sqlite_url: str) -> Iterator[Bench]:
    import shutil

    shutil.copy(_hashed, sqlite_url.removeprefix("sqlite:///"))
    store = Store.open(sqlite_url)
    items, conflict_id = fill(store)
    app = create_app(store, WebSettings(policies={"title": "manual"}))
    app.state.workbench.today = lambda: TODAY
    with TestClient(app) as client:
        yield Bench(store, client, conflict_id, items)
    store.close()
