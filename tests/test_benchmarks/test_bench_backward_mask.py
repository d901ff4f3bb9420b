"""benchmarks/bench_backward_mask.py runs end to end (batch 1, one timed run per mask)."""
import pytest

from mmdice.ops import EXT_AVAILABLE


@pytest.mark.skipif(not EXT_AVAILABLE, reason='times torch.ops.mmdice.dim_conv_backward')
def test_benchmark_prints_a_row_per_shape_with_every_mask(run_benchmark):
    stdout, rows = run_benchmark('bench_backward_mask.py', '--batch', '1', '--repeat', '1',
                                 '--threads', '1', '--markdown', timeout=300)
    assert [(row['channels'], row['height'], row['width']) for row in rows] == [
        (116, 28, 28), (232, 14, 14), (464, 7, 7)]
    for row in rows:
        assert min(row['all_ms'], row['input_only_ms'], row['weights_only_ms']) > 0
    assert '| C x H x W | all | input only | weights only |' in stdout.splitlines()
