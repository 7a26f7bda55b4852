"""`poam-sync export` as a user runs it: formats, header values from options and config."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from subprocess import CompletedProcess

import openpyxl
import pytest

from poam_sync import formats
from poam_sync.samples import SAMPLE_FEDRAMP_XLSX
from tests.test_cli import run


def _export(db: str, cwd: Path, fmt: str, out: Path | str, *options: str) -> CompletedProcess[str]:
    return run("--db", db, "export", "--format", fmt, "-o", str(out), *options, cwd=cwd)


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    done = run("--db", url, "import", str(SAMPLE_FEDRAMP_XLSX), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return url


def test_emass_export_re_imports_and_names_missing_cells(tmp_path: Path, db: str) -> None:
    out = tmp_path / "emass.xlsx"
    done = _export(db, tmp_path, "emass-xlsx", out, "--poam-date", "2026-12-01")
    assert done.returncode == 0, done.stderr
    assert "wrote 8 item(s)" in done.stderr
    # a risk-accepted sample item has no comments (eMASS requires them), others no milestones
    assert "V-1005: Comments" in done.stderr
    assert "V-1003: Milestone with Completion Dates" in done.stderr
    result = formats.read(out)
    assert result.format == "emass-xlsx" and len(result.items) == 8
    assert result.system == "Example Cloud Service"
    assert openpyxl.load_workbook(out)["POA&M"]["D2"].value == "12/1/2026"


def test_header_values_come_from_the_config_unless_given(tmp_path: Path, db: str) -> None:
    config = tmp_path / "config" / "poam-sync.yaml"
    config.parent.mkdir()
    config.write_text(
        "export:\n  csp: Example CSP\n  system_name: Example Offering\n  impact_level: Moderate\n",
        encoding="utf-8",
    )
    out = tmp_path / "emass.xlsx"
    done = _export(db, tmp_path, "emass-xlsx", out, "--system-name", "Other Offering")
    assert done.returncode == 0, done.stderr
    ws = openpyxl.load_workbook(out)["POA&M"]
    assert (ws["D4"].value, ws["D5"].value) == ("Example CSP", "Other Offering")


def test_a_bad_poam_date_is_a_usage_error(tmp_path: Path, db: str) -> None:
    done = _export(db, tmp_path, "csv", "x.csv", "--poam-date", "12/01")
    assert done.returncode == 2
    assert "--poam-date '12/01' is not a date" in done.stderr
    assert "Traceback" not in done.stderr


def test_fedramp_header_fields_from_options_and_config(tmp_path: Path, db: str) -> None:
    config = tmp_path / "config" / "poam-sync.yaml"
    config.parent.mkdir()
    config.write_text("export:\n  csp: Example CSP\n  impact_level: High\n", encoding="utf-8")
    out = tmp_path / "fedramp.xlsx"
    done = _export(db, tmp_path, "fedramp-xlsx", out, "--impact-level", "Moderate",
                   "--poam-date", "2026-12-01")  # fmt: skip
    assert done.returncode == 0, done.stderr
    ws = openpyxl.load_workbook(out)["Open POA&M Items"]
    assert [ws.cell(4, c).value for c in range(2, 6)] == [
        "Example CSP",
        "Example Cloud Service",
        "Moderate",
        datetime(2026, 12, 1),
    ]
    assert len(formats.read(out).items) == 8


def test_the_export_section_is_part_of_the_config() -> None:
    from poam_sync.config import parse_config
    from poam_sync.errors import ConfigError

    assert parse_config({"export": {"csp": "Example CSP"}}).export.csp == "Example CSP"
    with pytest.raises(ConfigError) as exc:
        parse_config({"export": {"cps": "typo"}})
    assert "export" in str(exc.value.message) and "cps" in str(exc.value.message)
