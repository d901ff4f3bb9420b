"""benchmarks/bench_backbones.py runs end to end (tiny input, one timed run per case)."""
import pytest

ARGS = ('--batch', '1', '--repeat', '1', '--warmup', '0', '--threads', '1', '--markdown')


def test_classifier_rows_with_ratio_to_shufflenet(run_benchmark):
    stdout, rows = run_benchmark('bench_backbones.py', *ARGS, '--size', '64', '--models',
                                 'dicenet-s1.0', 'dicenet-s1.0-deploy', 'shufflenet_v2_x1_5',
                                 '--forms', 'eager', 'eager-cl')
    assert any(line.startswith('malloc: ') for line in stdout.splitlines())
    assert [(row['model'], row['form']) for row in rows] == [
        (model, form) for model in ('dicenet-s1.0', 'dicenet-s1.0-deploy', 'shufflenet_v2_x1_5')
        for form in ('eager', 'eager-cl')]
    for row in rows:
        assert row['median_ms'] > 0 and row['images_per_s'] > 0
        assert row['median_vs_baseline'] > 0
        assert row['min_ms'] <= row['median_ms'] <= row['max_ms']
    assert all(row['median_vs_baseline'] == 1 for row in rows
               if row['model'] == 'shufflenet_v2_x1_5')
    params = {row['model']: row['mparams'] for row in rows}
    assert params['dicenet-s1.0-deploy'] < params['dicenet-s1.0']  # BatchNorms folded


def test_segmentation_rows(run_benchmark):
    _, rows = run_benchmark('bench_backbones.py', *ARGS, '--segmentation', '--seg-size', '64',
                            '--forms', 'eager', '--no-complexity')
    assert [(row['model'], row['variant']) for row in rows] == [
        ('dicenet-s1.0 voc seg 64x64', 'training'), ('dicenet-s1.0 voc seg 64x64', 'deploy')]


def test_detection_rows(run_benchmark):
    _, rows = run_benchmark('bench_backbones.py', *ARGS, '--detection', '--forms', 'eager',
                            '--no-complexity')
    assert [(row['model'], row['variant']) for row in rows] == [
        ('dicenet-s2.4 ssd300 voc 300x300', 'training'),
        ('dicenet-s2.4 ssd300 voc 300x300', 'deploy')]
    assert rows[0]['speedup_vs_training'] == pytest.approx(1)
    assert rows[1]['speedup_vs_training'] > 0
