"""benchmarks/roofline.py: a row per DiCE shape of DiCENet s=2.4, with its bound."""
import pytest


def test_rows_cover_every_dice_shape_with_a_consistent_bound(run_benchmark):
    stdout, rows = run_benchmark('roofline.py', '--batch', '1', '--repeat', '1', '--warmup', '0',
                                 '--threads', '1', '--markdown', timeout=300)
    assert 'copy bandwidth' in stdout
    assert sorted((row['channels'], row['height'], row['width']) for row in rows) == [
        (24, 28, 28), (139, 28, 28), (254, 28, 28), (278, 14, 14), (556, 7, 7)]
    assert sum(row['layers'] for row in rows) == 16
    for row in rows:
        assert row['dice_ms'] > 0 and row['depthwise_ms'] > 0 and row['openvino_ms'] is None
        assert row['bound_ms'] == pytest.approx(max(
            row['mbytes'] / row['copy_gbps'], row['mflops'] / row['gemm_gflops']))
        assert row['roofline_fraction'] == pytest.approx(row['bound_ms'] / row['dice_ms'])
        assert row['vs_depthwise'] == pytest.approx(row['dice_ms'] / row['depthwise_ms'])


def test_bytes_and_flops_of_a_shape(load_benchmark):
    roofline = load_benchmark('roofline')
    moved, flops = roofline.cost(2, 10, 4, 5)
    outputs = 2 * 10 * 4 * 5
    assert moved == 4 * (2 * outputs + (10 + 4 + 5) * 9 + 10 * 14)
    assert flops == outputs * (54 + 20)
