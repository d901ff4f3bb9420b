"""Unreadable inputs of the tools: one 'error:' line naming the file and the
reason, exit status 1, no traceback (subprocesses, as a user runs them)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip('mmengine')
from mmdice.utils.tool_inputs import (InputFileError, OutputFileError,  # noqa: E402
                                      check_output_file, load_config, read_checkpoint,
                                      write_checkpoint)

REPO_ROOT = Path(__file__).resolve().parents[2]
SHAPES_CONFIG = REPO_ROOT / 'configs' / 'dicenet' / 'dicenet-s0.5_1xb32_shapes-64px.py'


def truncated_checkpoint(path, zip_format, keep):
    """A torch.save file cut to the fraction ``keep`` of its size."""
    torch.save({'weight': torch.randn(64, 64)}, path, _use_new_zipfile_serialization=zip_format)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    return path


def run_tool(tool, *args):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get('PYTHONPATH')]))
    result = subprocess.run([sys.executable, str(REPO_ROOT / 'tools' / tool), *map(str, args)],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert 'Traceback' not in result.stderr, result.stderr
    return result.stderr.strip().splitlines()[-1]


def test_converter_reports_truncated_checkpoint(tmp_path):
    # the released EdgeNets files are legacy pickles: cut early, torch.load ends in EOFError
    src = truncated_checkpoint(tmp_path / 'dicenet.pth', zip_format=False, keep=0.02)
    line = run_tool('model_converters/edgenets2mmdice.py', src, tmp_path / 'out.pth')
    assert line.startswith(f'error: cannot convert {src}: cannot read checkpoint {src}: EOFError')
    assert 'truncated' in line
    assert not (tmp_path / 'out.pth').exists()


def test_train_reports_missing_config(tmp_path):
    config = tmp_path / 'missing.py'
    assert run_tool('train.py', config) == f'error: config {config} does not exist'


def test_train_reports_unparsable_config(tmp_path):
    config = tmp_path / 'broken.py'
    config.write_text('model = dict(type=\n')
    line = run_tool('train.py', config)
    assert line.startswith(f'error: cannot parse config {config}: SyntaxError')


def test_test_reports_unreadable_checkpoint(tmp_path):
    checkpoint = truncated_checkpoint(tmp_path / 'epoch_1.pth', zip_format=True, keep=0.5)
    line = run_tool('test.py', SHAPES_CONFIG, checkpoint)
    assert line.startswith(f'error: cannot read checkpoint {checkpoint}: ')
    assert line.endswith('(a truncated or corrupt file, or not written by torch.save?)')


def test_test_reports_bad_out_suffix(tmp_path):
    line = run_tool('test.py', SHAPES_CONFIG, tmp_path / 'epoch_1.pth', '--out', 'foo.txt')
    assert line == 'error: --out must be a .pkl or .pickle file, got foo.txt'


def test_train_reports_unreadable_resume_checkpoint(tmp_path):
    checkpoint = truncated_checkpoint(tmp_path / 'epoch_1.pth', zip_format=True, keep=0.02)
    line = run_tool('train.py', SHAPES_CONFIG, '--work-dir', tmp_path, '--resume', checkpoint)
    assert line.startswith(f'error: cannot read checkpoint {checkpoint}: RuntimeError: '
                           'PytorchStreamReader failed reading zip archive')


def test_load_config_reasons(tmp_path):
    config = tmp_path / 'name_error.py'
    config.write_text('model = dict(depth=undefined_name)\n')
    with pytest.raises(InputFileError, match=f'cannot parse config {config}: NameError'):
        load_config(str(config))
    with pytest.raises(InputFileError, match=f'config {tmp_path} is not a file'):
        load_config(str(tmp_path))
    assert load_config(str(SHAPES_CONFIG)).model.backbone.type == 'mmdice.DiCENet'


@pytest.mark.parametrize('zip_format,keep,reason', [
    (True, 0.02, 'RuntimeError: PytorchStreamReader failed reading zip archive'),
    (True, 0.5, '(OSError|RuntimeError): '),
    (False, 0.02, 'EOFError'),
    (False, 0.5, 'RuntimeError: unexpected EOF'),
])
def test_read_checkpoint_reasons(tmp_path, zip_format, keep, reason):
    path = truncated_checkpoint(tmp_path / 'cut.pth', zip_format, keep)
    with pytest.raises(InputFileError, match=f'cannot read checkpoint {path}: {reason}'):
        read_checkpoint(str(path))
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    with pytest.raises(InputFileError, match='EOFError.*truncated or empty'):
        read_checkpoint(str(empty))
    with pytest.raises(InputFileError, match='does not exist'):
        read_checkpoint(str(tmp_path / 'missing.pth'))
    whole = tmp_path / 'whole.pth'
    torch.save({'weight': torch.ones(3)}, whole, _use_new_zipfile_serialization=zip_format)
    assert torch.equal(read_checkpoint(str(whole))['weight'], torch.ones(3))


def test_reparameterize_reports_truncated_checkpoint(tmp_path):
    checkpoint = truncated_checkpoint(tmp_path / 'epoch_1.pth', zip_format=True, keep=0.5)
    out = tmp_path / 'deploy.pth'
    line = run_tool('model_converters/reparameterize_model.py', SHAPES_CONFIG, checkpoint, out)
    assert line.startswith(f'error: cannot read checkpoint {checkpoint}: ')
    assert sorted(path.name for path in tmp_path.iterdir()) == ['epoch_1.pth']


def unwritable_output(tmp_path):
    """An output path below a regular file: no one can write it, root included."""
    blocker = tmp_path / 'not_a_folder'
    blocker.write_text('')
    return blocker / 'out' / 'converted.pth', blocker


def test_reparameterize_reports_unwritable_output(tmp_path):
    checkpoint = tmp_path / 'trained.pth'
    torch.save({'weight': torch.ones(1)}, checkpoint)
    out, blocker = unwritable_output(tmp_path)
    line = run_tool('model_converters/reparameterize_model.py', SHAPES_CONFIG, checkpoint, out)
    assert line == f'error: cannot write output checkpoint {out}: {blocker} is not a folder'
    assert sorted(path.name for path in tmp_path.iterdir()) == ['not_a_folder', 'trained.pth']


def test_converter_reports_unwritable_output(tmp_path):
    src = tmp_path / 'dicenet.pth'
    torch.save({'level1.cbr.0.weight': torch.ones(1)}, src)
    out, blocker = unwritable_output(tmp_path)
    line = run_tool('model_converters/edgenets2mmdice.py', src, out)
    assert line == f'error: cannot write output checkpoint {out}: {blocker} is not a folder'
    assert sorted(path.name for path in tmp_path.iterdir()) == ['dicenet.pth', 'not_a_folder']


def test_float_input_size_is_one_error_line():
    line = run_tool('analysis_tools/get_flops.py', SHAPES_CONFIG, '--cfg-options',
                    'model.backbone.input_size=224.0')
    assert line.startswith('error: ')
    assert 'input_size must be a positive multiple of 32' in line
    assert line.endswith('got 224.0')


def test_write_checkpoint_leaves_no_file_when_saving_fails(tmp_path, monkeypatch):
    out = tmp_path / 'out.pth'

    def save_half_then_fail(obj, path):
        with open(path, 'wb') as file:
            file.write(b'PK\x03\x04 half a checkpoint')
        raise RuntimeError('[enforce fail at inline_container.cc:747] . unexpected pos')

    monkeypatch.setattr(torch, 'save', save_half_then_fail)
    with pytest.raises(OutputFileError,
                       match=f'cannot write output checkpoint {out}: RuntimeError: '):
        write_checkpoint({'weight': torch.ones(1)}, str(out))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OutputFileError, match=f'cannot write output checkpoint {tmp_path}: '
                       'it is a folder'):
        check_output_file(str(tmp_path))
