"""tools/dataset_converters/coco_to_multilabel.py on a generated COCO json."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmdice.testing import SHAPE_CLASSES, generate_shapes_detection

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOL = REPO_ROOT / 'tools' / 'dataset_converters' / 'coco_to_multilabel.py'


def test_converts_coco_to_multilabel_dataset(tmp_path):
    generate_shapes_detection(str(tmp_path), num_images=12, image_size=64, seed=0,
                              val_fraction=0.25)
    coco_file = tmp_path / 'annotations' / 'train.json'
    out_file = tmp_path / 'annotations' / 'multilabel_train.json'
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    subprocess.run([sys.executable, str(TOOL), str(coco_file), str(out_file)], check=True,
                   env=env, capture_output=True)
    coco = json.loads(coco_file.read_text())
    converted = json.loads(out_file.read_text())
    assert converted['metainfo']['classes'] == list(SHAPE_CLASSES)
    assert len(converted['data_list']) == len(coco['images']) == 9
    for image, item in zip(coco['images'], converted['data_list']):
        expected = {ann['category_id'] - 1 for ann in coco['annotations']
                    if ann['image_id'] == image['id']}
        assert item == dict(img_path=image['file_name'], gt_label=sorted(expected))

    mmpretrain = pytest.importorskip('mmpretrain.datasets')
    dataset = mmpretrain.MultiLabelDataset(
        ann_file=str(out_file), data_prefix=str(tmp_path / 'images'))
    assert len(dataset) == 9
    assert dataset.get_cat_ids(0) == converted['data_list'][0]['gt_label']
    assert Path(dataset.get_data_info(0)['img_path']).is_file()


def test_rejects_non_coco_input(tmp_path):
    sys.path.insert(0, str(TOOL.parent))
    try:
        from coco_to_multilabel import coco_to_multilabel
    finally:
        sys.path.remove(str(TOOL.parent))
    with pytest.raises(ValueError, match='annotations'):
        coco_to_multilabel(dict(images=[], categories=[]))
