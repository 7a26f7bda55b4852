"""Opening workbooks safely (openpyxl, read-only) with errors that say what to do."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openpyxl

from poam_sync.errors import InputError, Problem


@contextmanager
def open_workbook(path: Path) -> Iterator[Any]:
    """The workbook in read-only, values-only mode, closed (file included) on exit.

    openpyxl parses workbook XML with defusedxml when that is installed, which poam-sync
    requires: a DOCTYPE with entities is refused.
    """
    if not zipfile.is_zipfile(path):
        raise InputError(
            Problem(
                "not an Excel workbook (.xlsx/.xlsm): the file is not a zip archive, "
                "or it is truncated",
                file=path.name,
                hint="save the POA&M as an Excel workbook (.xlsx) and import it again",
                code="not_xlsx",
            )
        )
    # We open the file ourselves: openpyxl leaves its own handle open when loading fails.
    with path.open("rb") as fh:
        try:
            wb = openpyxl.load_workbook(fh, read_only=True, data_only=True)
        # openpyxl raises many types on a damaged workbook (KeyError, BadZipFile, XML errors)
        except Exception as exc:
            detail = str(exc).replace(str(path), path.name)
            raise InputError(
                Problem(
                    f"the workbook cannot be read: {type(exc).__name__}: {detail}",
                    file=path.name,
                    hint="open it in Excel, save it again as .xlsx, and import the new file",
                    code="bad_xlsx",
                )
            ) from exc
        try:
            yield wb
        finally:
            wb.close()


def iter_rows(ws: Any, file: str) -> Iterator[tuple[object, ...]]:
    """Rows of a read-only sheet as value tuples; a damaged sheet becomes an InputError."""
    try:
        yield from ws.iter_rows(values_only=True)
    except Exception as exc:  # same reason as in open_workbook
        raise InputError(
            Problem(
                f"the sheet cannot be read: {type(exc).__name__}: {exc}",
                file=file,
                sheet=ws.title,
                hint="open it in Excel, save it again as .xlsx, and import the new file",
                code="bad_xlsx",
            )
        ) from exc
