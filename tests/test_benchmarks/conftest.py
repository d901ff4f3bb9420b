"""Run a benchmarks/ script the way a user does (a subprocess from the repository),
or import one, and read the rows it writes with ``--json``."""
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO_ROOT / 'benchmarks'


@pytest.fixture
def run_benchmark(tmp_path):
    """``run_benchmark(script, *args)`` -> (stdout, rows): the script's output and
    the rows it wrote with ``--json``; fails on a non-zero exit."""

    def run(script, *args, timeout=600):
        rows_path = tmp_path / f'{Path(script).stem}.json'
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        stdout = subprocess.run([sys.executable, str(BENCHMARKS / script), *args, '--json',
                                 str(rows_path)], check=True, env=env, capture_output=True,
                                text=True, timeout=timeout).stdout
        return stdout, json.loads(rows_path.read_text())

    return run


@pytest.fixture
def load_benchmark(monkeypatch):
    """``load_benchmark(name)`` -> the module benchmarks/<name>.py, imported with
    benchmarks/ on sys.path as when the script runs."""

    def load(name):
        monkeypatch.syspath_prepend(str(BENCHMARKS))
        monkeypatch.delitem(sys.modules, name, raising=False)
        return importlib.import_module(name)

    return load


@pytest.fixture
def check_speedups():
    """``check_speedups(stdout, row, reference)``: the row's ``fwd_speedup`` and
    ``fwd_bwd_speedup`` are ``<reference>_<pass>_ms / fused_<pass>_ms``, and the row's
    markdown line (``| batch | CxHxW | ...``) prints them."""

    def check(stdout, row, reference):
        line, = (line for line in stdout.splitlines() if line.startswith(
            f"| {row['batch']} | {row['channels']}x{row['height']}x{row['width']} |"))
        for pass_ in ('fwd', 'fwd_bwd'):
            speed_up = row[f'{pass_}_speedup']
            assert speed_up == pytest.approx(row[f'{reference}_{pass_}_ms'] /
                                             row[f'fused_{pass_}_ms'])
            assert f' {speed_up:.1f}x |' in line

    return check
