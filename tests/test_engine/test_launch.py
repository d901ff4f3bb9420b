"""check_dataset_paths: missing datasets are named before anything is built."""
import pytest
from mmengine.config import Config

from mmdice.engine.launch import check_dataset_paths


def config(data_root, ann_file='annotations/train.json'):
    inner = dict(type='CocoDataset', data_root=data_root, ann_file=ann_file)
    return Config(dict(
        train_dataloader=dict(dataset=dict(type='RepeatDataset', times=2, dataset=inner)),
        val_dataloader=dict(dataset=dict(type='ConcatDataset', datasets=[inner, inner])),
        test_dataloader=None))


def test_existing_dataset_passes(tmp_path):
    (tmp_path / 'annotations').mkdir()
    (tmp_path / 'annotations' / 'train.json').write_text('{}')
    check_dataset_paths(config(str(tmp_path)), ('train_dataloader', 'val_dataloader',
                                                'test_dataloader', 'absent_dataloader'))


def test_missing_data_root_is_named(tmp_path):
    missing = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError,
                       match=r"train_dataloader\.dataset\.dataset: data_root '.*nowhere' is "
                             r'not a directory.*--cfg-options'):
        check_dataset_paths(config(missing), ('train_dataloader', ))


def test_missing_annotation_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match=r"val_dataloader\.dataset\.datasets\.0: ann_file '.*train\.json'"):
        check_dataset_paths(config(str(tmp_path)), ('val_dataloader', ))


def test_remote_paths_are_not_checked():
    check_dataset_paths(config('s3://bucket/coco/'), ('train_dataloader', ))


def test_load_from_of_a_recipe_step_names_the_first_step(tmp_path):
    from mmdice.engine.launch import check_load_from
    from mmdice.utils import InputFileError
    configs = tmp_path / 'configs' / 'seg'
    configs.mkdir(parents=True)
    (configs / 'stage1_256.py').write_text('train_cfg = dict(max_epochs=7)\n')
    stage2 = configs / 'stage2_384.py'
    stage2.write_text("load_from = 'work_dirs/stage1_256/epoch_7.pth'\n")
    cfg = Config.fromfile(str(stage2))
    with pytest.raises(InputFileError) as error:
        check_load_from(cfg, str(stage2))
    message = str(error.value)
    assert message.startswith('load_from checkpoint work_dirs/stage1_256/epoch_7.pth does not '
                              'exist: ')
    assert f'python tools/train.py {configs / "stage1_256.py"} writes ' \
           'work_dirs/stage1_256/epoch_7.pth' in message
    assert message.endswith(f'train {stage2} from scratch with --cfg-options load_from=None')
    assert '\n' not in message


def test_load_from_elsewhere_missing_or_present(tmp_path):
    from mmdice.engine.launch import check_load_from
    from mmdice.utils import InputFileError
    missing = Config(dict(load_from=str(tmp_path / 'nowhere.pth')))
    with pytest.raises(InputFileError, match=r'nowhere\.pth does not exist: point load_from at '
                       r'a checkpoint .*load_from=PATH.*load_from=None$'):
        check_load_from(missing, str(tmp_path / 'config.py'))
    (tmp_path / 'present.pth').write_bytes(b'')
    for load_from in (None, str(tmp_path / 'present.pth'), 'https://host/model.pth'):
        check_load_from(Config(dict(load_from=load_from)), str(tmp_path / 'config.py'))
