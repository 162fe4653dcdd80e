"""Every benchmark script starts: its --help runs (bench/ is not in the suite's timing,
but a script that fails on import, as one did after a rename, is caught here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if "__main__" in p.read_text(encoding="utf-8"))


def test_every_script_is_found() -> None:
    assert {p.name for p in SCRIPTS} >= {"films.py", "speed.py", "gpu_speed.py", "translate_bench.py"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_bench_script_starts(script: Path) -> None:
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=300,
                          cwd=BENCH.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout


def test_shell_scripts_parse() -> None:
    for script in BENCH.glob("*.sh"):
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0, script
