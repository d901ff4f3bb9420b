"""benchmarks/bench_end2end.py: raw and end-to-end exports of the shapes SSD timed
in onnxruntime (batch 1, one timed run)."""
import pytest

pytest.importorskip('onnxruntime')


def test_benchmark_times_raw_and_end2end(run_benchmark):
    stdout, rows = run_benchmark('bench_end2end.py', '--batch', '1', '--repeat', '1',
                                 '--warmup', '0', '--backends', 'onnxruntime', timeout=900)
    assert [(row['backend'], row['batch']) for row in rows] == [('onnxruntime', 1)]
    row = rows[0]
    assert row['raw_ms'] > 0 and row['end2end_ms'] > 0
    assert row['nms_ms'] == pytest.approx(row['end2end_ms'] - row['raw_ms'])
    assert row['kept'] == pytest.approx(row['raw_ms'] / row['end2end_ms'])
    assert 'end-to-end detector: test_cfg score_thr=0.01' in stdout
