"""Random bytes and random mutations of the real fixtures never crash an importer (a
PoamSyncError or a result, never another exception) and never change the store under
``--strict`` when some row or file is bad."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from tempfile import TemporaryDirectory

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from poam_sync import formats
from poam_sync.cli import app
from poam_sync.errors import PoamSyncError
from poam_sync.samples import SAMPLE_FEDRAMP_XLSX
from tests.conftest import examples
from tests.formats import builders as b
from tests.formats.test_hostile import _snapshot

SOURCES = {
    "nist.json": b.NIST_JSON.read_bytes(),
    "nist.xml": b.NIST_XML.read_bytes(),
    "sample.xlsx": SAMPLE_FEDRAMP_XLSX.read_bytes(),
    "chainguard.csv": b.CHAINGUARD_CSV.read_bytes(),
}
MUTATION = st.tuples(
    st.floats(0, 1),
    st.sampled_from(["flip", "insert", "delete"]),
    st.binary(min_size=1, max_size=8),
)


def _mutate(data: bytes, edits: list[tuple[float, str, bytes]]) -> bytes:
    out = bytearray(data)
    for where, how, chunk in edits:
        at = int(where * max(len(out) - 1, 0))
        if how == "flip" and out:
            out[at] ^= chunk[0] or 1
        elif how == "insert":
            out[at:at] = chunk
        elif out:
            del out[at : at + len(chunk)]
    return bytes(out)


def _mutate_sheet(data: bytes, edits: list[tuple[float, str, bytes]]) -> bytes:
    """Mutate the XML inside a workbook (mutating the zip bytes mostly breaks a checksum)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(buf, "w") as zout:
        for info in zin.infolist():
            member = zin.read(info.filename)
            if info.filename.startswith("xl/worksheets/"):
                member = _mutate(member, edits)
            zout.writestr(info.filename, member)
    return buf.getvalue()


def _read_never_crashes(name: str, data: bytes) -> None:
    with TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            formats.read(path)
        except PoamSyncError as exc:
            assert name in str(exc)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(SOURCES)), st.binary(max_size=2048))
def test_random_bytes_never_crash(name: str, data: bytes) -> None:
    _read_never_crashes(name, data)


@settings(max_examples=examples(120), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(SOURCES)), st.lists(MUTATION, min_size=1, max_size=6))
def test_mutated_fixtures_never_crash(name: str, edits: list[tuple[float, str, bytes]]) -> None:
    data = SOURCES[name]
    mutated = _mutate_sheet(data, edits) if name.endswith(".xlsx") else _mutate(data, edits)
    _read_never_crashes(name, mutated)


@settings(max_examples=examples(15), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MUTATION, min_size=1, max_size=4))
def test_strict_import_of_a_mutated_file_changes_nothing_unless_it_is_clean(
    edits: list[tuple[float, str, bytes]],
) -> None:
    runner = CliRunner()
    with TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'store.db'}"
        seeded = runner.invoke(app, ["--db", url, "import", str(SAMPLE_FEDRAMP_XLSX)])
        assert seeded.exit_code == 0, seeded.output
        before = _snapshot(url)
        path = Path(folder) / "mutated.xlsx"
        path.write_bytes(_mutate_sheet(SOURCES["sample.xlsx"], edits))
        result = runner.invoke(app, ["--db", url, "import", "--strict", str(path)])
        assert result.exit_code in (0, 1), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        if result.exit_code == 1:
            assert _snapshot(url) == before
        assert _snapshot(url)[2]  # the change log verifies
