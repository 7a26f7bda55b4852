"""Month 1 -> month 2 of one OSCAL POA&M lands in one system, whatever SSP file it points at:
the ``import-ssp`` href names a file that changes between revisions, so it is no identity. An
item gone from month 2 is reported as missing, never deleted."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from poam_sync.cli import app
from tests.formats import builders as b

runner = CliRunner()


def test_the_next_revision_lands_in_the_same_system_and_reports_what_it_dropped(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'poam-sync.db'}"
    month1 = b.AWESOME_XML.read_text(encoding="utf-8")
    month2 = month1.replace('href="AwesomeCloudSSP1.xml"', 'href="AwesomeCloudSSP2.xml"')
    first = re.search(r"<poam-item .*?</poam-item>", month2, flags=re.S)
    assert first is not None
    month2 = month2.replace(first.group(0), "", 1)
    (tmp_path / "month2.xml").write_text(month2, encoding="utf-8")

    one = runner.invoke(app, ["--db", url, "import", str(b.AWESOME_XML), "--json"])
    two = runner.invoke(app, ["--db", url, "import", str(tmp_path / "month2.xml"), "--json"])
    (r1,), (r2,) = json.loads(one.stdout), json.loads(two.stdout)
    assert r1["system"] == r2["system"] == "AwesomeCloud Plan of Actions and Milestones"
    assert len(r2["missing"]) == 1 and r2["created"] == []
