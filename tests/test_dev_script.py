"""`python3 dev.py` on a Python too old for the project says so, not a SyntaxError; `test`
spreads pytest over the cores unless told otherwise."""

from __future__ import annotations

import ast
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def _pytest_args() -> Any:
    return runpy.run_path(str(DEV), run_name="dev")["pytest_args"]


def test_the_suite_is_spread_over_one_worker_per_core_by_default() -> None:
    args = _pytest_args()(["tests/store", "-k", "chain"])
    assert args == ["-n", "auto", "--dist", "loadgroup", "tests/store", "-k", "chain"]


def test_a_worker_choice_of_the_caller_is_left_alone() -> None:
    pytest_args = _pytest_args()
    for chosen in (["-n", "0"], ["-n3"], ["--numprocesses=4"], ["-p", "no:xdist"], ["--dist=no"]):
        assert pytest_args(["tests", *chosen]) == ["tests", *chosen]


def test_long_selects_the_long_hypothesis_profile() -> None:
    args = _pytest_args()(["--long", "tests/sync/test_state_machine.py"])
    assert args[0] == "--hypothesis-profile=long"
    assert "--long" not in args and args[-1] == "tests/sync/test_state_machine.py"
