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
