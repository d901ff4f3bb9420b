"""benchmarks/bench_train_step.py runs end to end (tiny batch and images, one timed step)."""
import pytest

pytest.importorskip('mmpretrain')


def test_benchmark_prints_both_paths_with_agreeing_losses(run_benchmark):
    stdout = run_benchmark('bench_train_step.py', '--models', 'cls-s1.0', '--batch', '2',
                           '--size', '64', '--steps', '1', '--warmup', '0', '--threads', '1',
                           '--markdown')
    lines = stdout.splitlines()
    rows = [line.split(' | ') for line in lines if line.startswith('| cls-s1.0 |')]
    assert [row[3] for row in rows] == ['fused', 'authors']
    for row in rows:
        assert float(row[4]) > 0 and float(row[7]) > 0  # median ms, peak MiB
    losses = [float(row[9].rstrip(' |')) for row in rows]
    assert abs(losses[0] - losses[1]) <= 1e-4 * max(1.0, abs(losses[1]))
    assert 'losses agree: cls-s1.0' in stdout
