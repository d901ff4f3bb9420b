"""benchmarks/bench_norm_act.py: one checked row per shape (batch 1, one timed run)."""


def test_benchmark_prints_a_row_per_shape_with_consistent_ratios(run_benchmark):
    stdout = run_benchmark('bench_norm_act.py', '--batch', '1', '--repeat', '1', '--warmup', '0',
                           '--threads', '1', '--markdown', timeout=300)
    rows = [line.strip('| ').split(' | ') for line in stdout.splitlines()
            if line.startswith('| 1 |')]
    assert [row[1] for row in rows] == ['24x112x112', '116x28x28', '348x28x28', '696x14x14',
                                        '1392x7x7']
    for row in rows:
        stock, fused, stock_both, fused_both = (float(row[i]) for i in (2, 3, 5, 6))
        assert min(stock, fused, stock_both, fused_both) > 0
        for ref, new, ratio in ((stock, fused, row[4]), (stock_both, fused_both, row[7])):
            low = (ref - 0.005) / (new + 0.005) - 0.05
            high = (ref + 0.005) / max(new - 0.005, 1e-9) + 0.05
            assert low <= float(ratio[:-1]) <= high, row
