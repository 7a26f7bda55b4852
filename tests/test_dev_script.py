"""`python3 dev.py` on a Python too old for the project says so, not a SyntaxError."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

DEV = Path(__file__).resolve().parents[1] / "dev.py"


def test_dev_py_parses_with_an_old_python_grammar() -> None:
    ast.parse(DEV.read_text(), feature_version=(3, 4))  # no f-strings, no walrus, no match


def test_an_old_python_gets_the_friendly_message() -> None:
    pretend = (
        "import sys; sys.version_info = (3, 8, 10, 'final', 0); "
        f"exec(compile(open({str(DEV)!r}).read(), 'dev.py', 'exec'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", pretend], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "poam-sync needs Python 3.11 or newer; this is Python 3.8" in done.stderr
