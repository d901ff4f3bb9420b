"""Run a benchmarks/ script the way a user does: a subprocess from the repository."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run_benchmark():
    """``run_benchmark(script, *args)`` -> the script's stdout; fails on a non-zero exit."""

    def run(script, *args, timeout=600):
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        return subprocess.run([sys.executable, str(REPO_ROOT / 'benchmarks' / script), *args],
                              check=True, env=env, capture_output=True, text=True,
                              timeout=timeout).stdout

    return run
