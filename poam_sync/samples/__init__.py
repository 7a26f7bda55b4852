"""A small synthetic POA&M for the demo (``sample-fedramp-poam.xlsx``, built by ``build.py``)."""

from __future__ import annotations

from pathlib import Path

SAMPLE_FEDRAMP_XLSX = Path(__file__).with_name("sample-fedramp-poam.xlsx")

__all__ = ["SAMPLE_FEDRAMP_XLSX"]
