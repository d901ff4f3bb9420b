"""benchmarks/bench_dim_conv.py runs end to end (batch 1, one timed run per case)."""
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / 'benchmarks' / 'bench_dim_conv.py'


def test_benchmark_prints_a_row_per_shape():
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), '--batch', '1', '--repeat', '1', '--warmup', '0',
         '--threads', '1', '--markdown'],
        check=True, env=env, capture_output=True, text=True)
    lines = result.stdout.splitlines()
    malloc = next(line for line in lines if line.startswith('malloc: '))
    assert malloc.startswith(('malloc: large blocks reused', 'malloc: system default'))
    rows = [line for line in lines if line.startswith('| 1 |')]
    assert [row.split(' | ')[1] for row in rows] == [
        '116x28x28', '232x14x14', '464x7x7', '278x28x28', '556x14x14', '1112x7x7']
    for row in rows:
        speed_ups = [cell for cell in row.split(' | ') if cell.endswith('x')]
        assert len(speed_ups) == 2 and all(float(cell[:-1]) > 0 for cell in speed_ups)
