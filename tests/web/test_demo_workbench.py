"""`poam-sync demo` ends with how to open the workbench on its store, and an admin account that
signs in there."""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console

from poam_sync.demo import DEMO_ACCOUNT, run_demo
from poam_sync.store import Store
from poam_sync.web.accounts import authenticate


def test_the_demo_prints_the_workbench_and_an_account_that_signs_in(tmp_path: Path) -> None:
    said = io.StringIO()
    assert run_demo(tmp_path / "demo", Console(file=said, width=200, highlight=False)) == 0
    text = said.getvalue()
    assert "serve --http 127.0.0.1:8080" in text and "http://127.0.0.1:8080/" in text
    found = re.search(rf"sign in as {re.escape(DEMO_ACCOUNT)}, password (\S+)", text)
    assert found, text
    with Store.open(f"sqlite:///{tmp_path / 'demo' / 'poam-sync.db'}") as store:
        user = authenticate(store, DEMO_ACCOUNT, found.group(1))
        assert user is not None and user.role == "admin"
