"""Credentials written into a URL never reach the screen: ``config check`` masks them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from poam_sync.cli import app
from poam_sync.redact import mask_url_credentials
from tests.test_http import dead_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://bob:s3cret@jira.example.com/x", "https://***@jira.example.com/x"),
        ("at postgresql+psycopg://u:p%40ss@db:5432/p.", "at postgresql+psycopg://***@db:5432/p."),
        ("http://token@host and http://other", "http://***@host and http://other"),
        ("mail bob@example.com, no url", "mail bob@example.com, no url"),
    ],
)
def test_mask_url_credentials(text: str, expected: str) -> None:
    assert mask_url_credentials(text) == expected


@pytest.mark.parametrize("scheme", ["http", "ftp"])
def test_config_check_masks_credentials_in_a_connector_url(tmp_path: Path, scheme: str) -> None:
    url = f"{scheme}://sync:hunter2@127.0.0.1:{dead_port()}"
    config = tmp_path / "poam-sync.yaml"
    config.write_text(
        json.dumps(
            {
                "connectors": {
                    "jira": {
                        "type": "jira",
                        "url": url,
                        "pat": "${JIRA_PAT}",
                        "project_key": "POAM",
                        "mapping": str(ROOT / "mappings" / "jira.yaml"),
                    }
                }
            }
        )
    )
    result = CliRunner(env={"JIRA_PAT": "x"}).invoke(
        app, ["--config", str(config), "config", "check"]
    )
    text = result.output + result.stderr
    assert result.exit_code in (1, 2), text
    assert "hunter2" not in text and "sync:" not in text
    assert "Traceback" not in text
