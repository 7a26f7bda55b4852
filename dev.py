#!/usr/bin/env python3
"""Set-up and the two everyday commands, with nothing but Python 3.11+ on the machine.

    python3 dev.py demo     # the main job on embedded defaults (SQLite, bundled simulators)
    python3 dev.py test     # lint, type checks and the whole test suite
    python3 dev.py test --long   # the same, with the long property-test runs

Each creates ``.venv`` beside this file when it is missing and (re)installs the project into
it whenever ``pyproject.toml`` (or the example connector's, in ``tests/example_connector``)
changed. Extra arguments go to ``poam-sync demo`` / pytest.
"""

# Written so that any Python 3 can parse it and reach this check (no f-strings, no
# annotations evaluated at import): an old python3 gets this message, not a SyntaxError.
import sys

if sys.version_info < (3, 11):
    sys.exit(
        "poam-sync needs Python 3.11 or newer; this is Python {}.{}. Install a newer python3 "
        "(or run this file with one, e.g. python3.12 dev.py test).".format(*sys.version_info[:2])
    )

import hashlib
import os
import subprocess
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".poam-sync-installed"
# A third-party connector in miniature; the tests prove it plugs in through its entry point.
EXAMPLE_CONNECTOR = ROOT / "tests" / "example_connector"


def _run(*args, env=None):  # type: (str | Path, dict[str, str] | None) -> None
    print("+", " ".join(str(a) for a in args), flush=True)
    result = subprocess.run([str(a) for a in args], cwd=ROOT, env=env, check=False)
    if result.returncode != 0:
        sys.exit(result.returncode)


def ensure_venv():  # type: () -> None
    if not PY.exists():
        print("creating a virtual environment in {}/".format(VENV.name), flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    digest.update((EXAMPLE_CONNECTOR / "pyproject.toml").read_bytes())
    wanted = digest.hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    _run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _run(PY, "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    _run(PY, "-m", "pip", "install", "--quiet", "-e", EXAMPLE_CONNECTOR.relative_to(ROOT))
    STAMP.write_text(wanted + "\n")


def demo(args):  # type: (list[str]) -> None
    _run(BIN / "poam-sync", "demo", *args)


def _chooses_workers(args):  # type: (list[str]) -> bool
    """Whether pytest's arguments already say how to spread the tests (or not to)."""
    for arg in args:
        if arg in ("-n", "--numprocesses", "--dist", "no:xdist") or arg.startswith(
            ("-n", "--numprocesses=", "--dist=")
        ):
            return True
    return False


def pytest_args(args):  # type: (list[str]) -> list[str]
    """pytest's arguments for ``test``: one worker per core (pytest-xdist), the tests that
    share a costly module fixture kept on one worker (``xdist_group``), unless ``args`` choose;
    ``--long`` becomes Hypothesis's "long" profile (the full property runs)."""
    args = list(args)
    chosen = []  # type: list[str]
    if "--long" in args:
        args.remove("--long")
        chosen.append("--hypothesis-profile=long")
    if not _chooses_workers(args):
        chosen += ["-n", "auto", "--dist", "loadgroup"]
    return chosen + args


def test(args):  # type: (list[str]) -> None
    _run(BIN / "ruff", "check", ".")
    _run(BIN / "ruff", "format", "--check", ".")
    _run(BIN / "mypy")
    _run(PY, "-m", "pytest", *pytest_args(args))


def main():  # type: () -> None
    commands = {"demo": demo, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    ensure_venv()
    commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
