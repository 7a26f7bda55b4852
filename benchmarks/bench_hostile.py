"""How fast hostile workbooks are refused, and what that costs in memory.

Builds a zip bomb (a sheet padded with 4 GiB of blanks: a 4 MiB file), a workbook with a row
past Excel's limit, and a workbook whose ``<dimension>`` claims two rows of 2,000; reads each
with ``formats.read`` and prints the time to the verdict and the process's peak resident size.
Peer: before the zip checks, issue 10 saw a 1 MB bomb take the importer to 6 GB RSS.
Run: ``python benchmarks/bench_hostile.py``. Not part of the test suite.
"""

from __future__ import annotations

import re
import resource
import tempfile
import time
import zipfile
from pathlib import Path

import openpyxl
import structlog

from poam_sync import formats
from poam_sync.errors import InputError


def _workbook(path: Path, rows: int) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Open POA&M Items"
    ws.append(["POAM ID", "Weakness Name", "Original Detection Date"])
    for n in range(rows):
        ws.append([f"V-{n:05d}", f"Weakness {n}", "2026-01-05"])
    wb.save(path)
    return path


def _bomb(src: Path, dest: Path, mib: int) -> Path:
    """``src`` with its sheet padded by ``mib`` MiB of blanks, streamed (never held in memory)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename != "xl/worksheets/sheet1.xml":
                zout.writestr(info.filename, data)
                continue
            head, tail = data.split(b"<sheetData>", 1)
            with zout.open(info.filename, "w", force_zip64=True) as out:
                out.write(head + b"<sheetData>")
                for _ in range(mib):
                    out.write(b" " * 2**20)
                out.write(tail)
    return dest


def _rewrite(src: Path, dest: Path, edit: object) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = edit(data)  # type: ignore[operator]
            zout.writestr(info.filename, data)
    return dest


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    with tempfile.TemporaryDirectory() as folder:
        base = _workbook(Path(folder) / "base.xlsx", 3)
        cases = {
            "zip bomb (4 GiB of blanks)": _bomb(base, Path(folder) / "bomb.xlsx", 4096),
            "row 1,048,577": _rewrite(
                base,
                Path(folder) / "past.xlsx",
                lambda d: d.replace(
                    b"</sheetData>", b'<row r="1048577"><c r="A1048577"/></row></sheetData>'
                ),
            ),
            "stale dimension, 2,000 rows": _rewrite(
                _workbook(Path(folder) / "big.xlsx", 2000),
                Path(folder) / "stale.xlsx",
                lambda d: re.sub(rb'<dimension ref="[^"]*"\s*/>', b'<dimension ref="A1:C2"/>', d),
            ),
        }
        print(f"{'case':32} {'size':>10} {'verdict':>30} {'time':>8}  peak RSS")
        for name, path in cases.items():
            start = time.perf_counter()
            try:
                verdict = f"{len(formats.read(path).items)} items"
            except InputError as exc:
                verdict = f"refused ({exc.problem.code})"
            took = time.perf_counter() - start
            size = f"{path.stat().st_size / 2**20:.2f} MiB"
            print(
                f"{name:32} {size:>10} {verdict:>30} {took * 1000:6.0f} ms  {_peak_mib():.0f} MiB"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
