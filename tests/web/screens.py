"""Screenshots of every workbench page, wide (1,280 px) and narrow (390 px), on a synced demo
store: ``python -m tests.web.screens OUT_DIR`` (scripts/workbench-screenshots.sh)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.web.browser import chromium
from tests.web.synced import PASSWORD, synced_workbench

WIDTHS = {"wide": 1280, "narrow": 390}


def _sign_in(page: Any) -> None:
    page.goto("/login")
    page.get_by_label("Account").fill("admin@example.gov")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder, synced_workbench(Path(folder)) as s:
        pages = {
            "login": "/login",
            "dashboard": "/",
            "items": "/items?status=open&sort=due",
            "item": f"/items/{s.conflicted.uuid}",
            "conflicts": "/conflicts",
            "problems": "/problems",
        }
        with chromium() as browser:
            for label, width in WIDTHS.items():
                context: Any = browser.new_context(  # type: ignore[attr-defined]
                    base_url=s.url, viewport={"width": width, "height": 900}
                )
                page = context.new_page()
                page.goto("/login")
                page.screenshot(path=str(out / f"login-{label}.png"), full_page=True)
                _sign_in(page)
                for name, path in pages.items():
                    if name == "login":
                        continue
                    page.goto(path)
                    target = out / f"{name}-{label}.png"
                    page.screenshot(path=str(target), full_page=True)
                    print(target)
                context.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "workbench-screenshots"))
