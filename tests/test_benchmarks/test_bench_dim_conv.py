"""benchmarks/bench_dim_conv.py: it refuses a wrong fused result, and its rows
are one consistent, checked row per shape (batch 1, one timed run per case)."""
import pytest
import torch

SHAPES = [(116, 28, 28), (232, 14, 14), (464, 7, 7), (278, 28, 28), (556, 14, 14),
          (1112, 7, 7)]


def test_benchmark_prints_a_checked_row_per_shape(run_benchmark, check_speedups):
    stdout, rows = run_benchmark('bench_dim_conv.py', '--batch', '1', '--repeat', '1',
                                 '--warmup', '0', '--threads', '1', '--markdown')
    lines = stdout.splitlines()
    malloc = next(line for line in lines if line.startswith('malloc: '))
    assert malloc.startswith(('malloc: large blocks reused', 'malloc: system default'))
    assert ('checked: the fused output and gradients match the reference within 0.0001 '
            'on all 6 cases') in lines
    assert [row['batch'] for row in rows] == [1] * len(SHAPES)
    assert [(row['channels'], row['height'], row['width']) for row in rows] == SHAPES
    # at the default input size (224) every shape runs at its build size
    assert [(row['build_height'], row['build_width']) for row in rows] == [
        (height, width) for _, height, width in SHAPES]
    for row in rows:
        times = [row[f'{path}_{pass_}_ms'] for pass_ in ('fwd', 'fwd_bwd')
                 for path in ('ref', 'fused', 'dw')]
        assert min(times) > 0
        check_speedups(stdout, row, 'ref')


@pytest.mark.parametrize('broken', ['output', 'weight_height'])
def test_benchmark_refuses_a_wrong_fused_result(monkeypatch, load_benchmark, broken):
    """A fused op off by one part in a thousand in its output, or in one
    weight's gradient only, stops the benchmark before anything is timed."""
    bench = load_benchmark('bench_dim_conv')
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
    assert (row['channels'], row['height'], row['width']) == (8, 7, 7)
    assert row['fused_fwd_ms'] > 0


def test_cuda_rows_add_bandwidth_and_fraction_of_peak(load_benchmark):
    """The GPU columns (filled here from a CPU row): the fused op's GB/s from the
    bytes it moves and its times, and their percentages of ``--peak-gbps``."""
    bench = load_benchmark('bench_dim_conv')
    row = bench.time_shape(2, (8, 7, 7), torch.float32, torch.device('cpu'), 0, 1)
    bench.add_bandwidth(row, peak_gbps=100.0)
    assert row['fused_fwd_gbps'] == pytest.approx(row['fwd_bytes'] / row['fused_fwd_ms'] / 1e6)
    assert row['fused_fwd_bwd_gbps'] == pytest.approx(
        row['fwd_bwd_bytes'] / row['fused_fwd_bwd_ms'] / 1e6)
    assert row['fwd_peak_percent'] == pytest.approx(row['fused_fwd_gbps'])
    assert row['fwd_bwd_peak_percent'] == pytest.approx(row['fused_fwd_bwd_gbps'])
    header, _, line = bench.format_table(
        [row], bench.table_columns(torch.device('cuda'), 100.0), markdown=True).splitlines()
    assert header.endswith('| fused fwd GB/s | fused fwd+bwd GB/s | fwd % peak | fwd+bwd % peak |')
    assert line.endswith(f"| {row['fwd_bwd_peak_percent']:.0f}% |")
