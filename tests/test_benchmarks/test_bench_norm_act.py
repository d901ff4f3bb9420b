"""benchmarks/bench_norm_act.py: one checked row per shape (batch 1, one timed run)."""


def test_benchmark_prints_a_row_per_shape_with_consistent_ratios(run_benchmark, check_speedups):
    stdout, rows = run_benchmark('bench_norm_act.py', '--batch', '1', '--repeat', '1',
                                 '--warmup', '0', '--threads', '1', '--markdown', timeout=300)
    assert [(row['batch'], row['channels'], row['height'], row['width']) for row in rows] == [
        (1, 24, 112, 112), (1, 116, 28, 28), (1, 348, 28, 28), (1, 696, 14, 14),
        (1, 1392, 7, 7)]
    for row in rows:
        assert min(row['stock_fwd_ms'], row['fused_fwd_ms'], row['stock_fwd_bwd_ms'],
                   row['fused_fwd_bwd_ms']) > 0
        check_speedups(stdout, row, 'stock')
