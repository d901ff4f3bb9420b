"""benchmarks/bench_dim_conv.py: it refuses a wrong fused result, and its table
has one consistent row per shape (batch 1, one timed run per case)."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / 'benchmarks' / 'bench_dim_conv.py'


def load_benchmark():
    spec = importlib.util.spec_from_file_location('bench_dim_conv', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_prints_a_checked_row_per_shape():
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), '--batch', '1', '--repeat', '1', '--warmup', '0',
         '--threads', '1', '--markdown'],
        check=True, env=env, capture_output=True, text=True)
    lines = result.stdout.splitlines()
    malloc = next(line for line in lines if line.startswith('malloc: '))
    assert malloc.startswith(('malloc: large blocks reused', 'malloc: system default'))
    assert ('checked: the fused output and gradients match the reference within 0.0001 '
            'on all 6 cases') in lines
    rows = [line.strip('| ').split(' | ') for line in lines if line.startswith('| 1 |')]
    assert [row[1] for row in rows] == [
        '116x28x28', '232x14x14', '464x7x7', '278x28x28', '556x14x14', '1112x7x7']
    # at the default input size (224) every shape runs at its build size
    assert [row[2] for row in rows] == [row[1].split('x', 1)[1] for row in rows]
    for row in rows:
        times = [float(row[i]) for i in (3, 4, 7, 8)]
        assert min(times) > 0
        # the speed-up cells are the ratios of the times (printed to 0.01 ms, ratios to 0.1)
        for ref, fused, speed_up in ((times[0], times[1], row[5]), (times[2], times[3], row[9])):
            assert speed_up.endswith('x')
            low = (ref - 0.005) / (fused + 0.005) - 0.05
            high = (ref + 0.005) / max(fused - 0.005, 1e-9) + 0.05
            assert low <= float(speed_up[:-1]) <= high, row

@pytest.mark.parametrize('broken', ['output', 'weight_height'])
def test_benchmark_refuses_a_wrong_fused_result(monkeypatch, broken):
    """A fused op off by one part in a thousand in its output, or in one
    weight's gradient only, stops the benchmark before anything is timed."""
    bench = load_benchmark()
    exact = bench.dim_conv

    def wrong_output(x, weight_depth, weight_height, weight_width):
        return exact(x, weight_depth, weight_height, weight_width) * 1.001

    def wrong_weight_height_grad(x, weight_depth, weight_height, weight_width):
        scaled = weight_height + (weight_height * 1e-3 - (weight_height * 1e-3).detach())
        return exact(x, weight_depth, scaled, weight_width)

    monkeypatch.setattr(bench, 'dim_conv',
                        wrong_output if broken == 'output' else wrong_weight_height_grad)
    with pytest.raises(AssertionError, match=f'fused .*{broken}'):
        bench.time_shape(2, (8, 7, 7), torch.float32, torch.device('cpu'), 0, 1)
    monkeypatch.setattr(bench, 'dim_conv', exact)
    row = bench.time_shape(2, (8, 7, 7), torch.float32, torch.device('cpu'), 0, 1)
    assert row['shape'] == (8, 7, 7) and row['fused_fwd'] > 0
