"""benchmarks/bench_train_step.py runs end to end (tiny batch and images, one timed step)."""
import pytest

pytest.importorskip('mmpretrain')


def test_benchmark_prints_both_paths_with_agreeing_losses(run_benchmark):
    stdout, rows = run_benchmark('bench_train_step.py', '--models', 'cls-s1.0', '--batch', '2',
                                 '--size', '64', '--steps', '1', '--warmup', '0', '--threads',
                                 '1', '--markdown')
    assert [(row['model'], row['path']) for row in rows] == [('cls-s1.0', 'fused'),
                                                            ('cls-s1.0', 'authors')]
    for row in rows:
        assert row['median_ms'] > 0 and row['peak_mib'] > 0
    fused, authors = (row['loss'] for row in rows)
    assert abs(fused - authors) <= 1e-4 * max(1.0, abs(authors))
    assert 'losses agree: cls-s1.0' in stdout
