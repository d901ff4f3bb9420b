"""benchmarks/bench_backbones.py runs end to end (tiny input, one timed run per case)."""
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / 'benchmarks' / 'bench_backbones.py'


def run(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), '--batch', '1', '--repeat', '1', '--warmup', '0',
         '--threads', '1', '--markdown', *args],
        check=True, env=env, capture_output=True, text=True, timeout=600)
    return result.stdout.splitlines()


def test_classifier_rows_with_ratio_to_shufflenet():
    lines = run('--size', '64', '--models', 'dicenet-s1.0', 'dicenet-s1.0-deploy',
                'shufflenet_v2_x1_5', '--forms', 'eager', 'eager-cl')
    assert any(line.startswith('malloc: ') for line in lines)
    rows = [line.split(' | ') for line in lines if line.startswith('| dicenet') or
            line.startswith('| shufflenet')]
    assert [(row[0], row[1]) for row in rows] == [
        (f'| {model}', form) for model in ('dicenet-s1.0', 'dicenet-s1.0-deploy',
                                           'shufflenet_v2_x1_5')
        for form in ('eager', 'eager-cl')]
    for row in rows:
        assert float(row[3]) > 0 and float(row[5]) > 0 and float(row[6]) > 0
    baseline = [row for row in rows if row[0] == '| shufflenet_v2_x1_5']
    assert all(row[6] == '1.00' for row in baseline)
    deploy_params = {row[8].rstrip(' |') for row in rows if row[0] == '| dicenet-s1.0-deploy'}
    train_params = {row[8].rstrip(' |') for row in rows if row[0] == '| dicenet-s1.0'}
    assert float(deploy_params.pop()) < float(train_params.pop())  # BatchNorms folded


def test_segmentation_rows():
    lines = run('--segmentation', '--seg-size', '64', '--forms', 'eager', '--no-complexity')
    rows = [line for line in lines if line.startswith('| dicenet-s1.0 voc seg 64x64')]
    assert len(rows) == 2 and rows[1].split(' | ')[0].endswith('deploy')


def test_detection_rows():
    lines = run('--detection', '--forms', 'eager', '--no-complexity')
    rows = [line.split(' | ') for line in lines
            if line.startswith('| dicenet-s2.4 ssd300 voc 300x300')]
    assert [row[0].rsplit(' ', 1)[1] for row in rows] == ['training', 'deploy']
    assert rows[0][6].startswith('1.00') and float(rows[1][6].split()[0]) > 0
