"""The synthetic shapes generator: determinism, layouts and annotation validity."""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmdice.testing import (SHAPE_CLASSES, generate_shapes_classification,
                            generate_shapes_detection, generate_shapes_segmentation)

REPO_ROOT = Path(__file__).resolve().parents[2]


def tree_digest(root):
    """{relative path: sha1 of the bytes} of every file under root."""
    root = Path(root)
    return {str(path.relative_to(root)): hashlib.sha1(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob('*')) if path.is_file()}


@pytest.mark.parametrize('generate', [
    generate_shapes_classification, generate_shapes_detection, generate_shapes_segmentation])
def test_same_seed_same_files_other_seed_other_images(tmp_path, generate):
    generate(str(tmp_path / 'a'), num_images=12, image_size=32, seed=3)
    generate(str(tmp_path / 'b'), num_images=12, image_size=32, seed=3)
    generate(str(tmp_path / 'c'), num_images=12, image_size=32, seed=4)
    digest_a = tree_digest(tmp_path / 'a')
    assert digest_a == tree_digest(tmp_path / 'b')
    digest_c = tree_digest(tmp_path / 'c')
    images = [name for name in digest_a if name.endswith(('.jpg', '.png'))]
    assert images
    assert sum(digest_a[name] != digest_c.get(name) for name in images) > len(images) // 2


def test_image_depends_only_on_seed_and_index(tmp_path):
    generate_shapes_segmentation(str(tmp_path / 'small'), num_images=4, image_size=32, seed=1)
    generate_shapes_segmentation(str(tmp_path / 'large'), num_images=8, image_size=32, seed=1)
    for stem in ('00000', '00001', '00002'):  # train images of both sets
        for sub, ext in (('JPEGImages', '.jpg'), ('SegmentationClass', '.png')):
            small = (tmp_path / 'small' / sub / (stem + ext)).read_bytes()
            assert small == (tmp_path / 'large' / sub / (stem + ext)).read_bytes()


def test_classification_folder_layout(tmp_path):
    counts = generate_shapes_classification(str(tmp_path), num_images=24, image_size=48, seed=0,
                                            val_fraction=0.25)
    assert counts == {'train': 18, 'val': 6}
    for split, expected in counts.items():
        class_dirs = sorted(p.name for p in (tmp_path / split).iterdir())
        assert class_dirs == sorted(SHAPE_CLASSES)
        files = sorted((tmp_path / split).glob('*/*.png'))
        assert len(files) == expected
        per_class = {name: len(list((tmp_path / split / name).glob('*.png')))
                     for name in SHAPE_CLASSES}
        assert max(per_class.values()) - min(per_class.values()) <= 1
        for path in files[:4]:
            image = Image.open(path)
            assert image.mode == 'RGB' and image.size == (48, 48)
    # the shape is drawn: the image is not a plain background
    image = np.asarray(Image.open(files[0]), dtype=np.float32)
    assert image.std() > 10


def test_classification_dataset_loads_in_mmpretrain(tmp_path):
    pytest.importorskip('mmpretrain')
    from mmpretrain.datasets import CustomDataset
    generate_shapes_classification(str(tmp_path), num_images=12, image_size=32, seed=0)
    dataset = CustomDataset(data_root=str(tmp_path), data_prefix='val')
    assert list(dataset.CLASSES) == sorted(SHAPE_CLASSES)
    assert len(dataset) == 3
    assert sorted(dataset.get_gt_labels().tolist()) == [0, 1, 2]


def test_detection_coco_json(tmp_path):
    counts = generate_shapes_detection(str(tmp_path), num_images=16, image_size=64, seed=0,
                                       val_fraction=0.25, max_shapes=4)
    assert counts == {'train': 12, 'val': 4}
    coco_module = pytest.importorskip('pycocotools.coco')
    image_ids = set()
    for split, expected in counts.items():
        coco = coco_module.COCO(str(tmp_path / 'annotations' / f'{split}.json'))
        assert len(coco.getImgIds()) == expected
        assert [coco.cats[k]['name'] for k in sorted(coco.cats)] == list(SHAPE_CLASSES)
        assert len(coco.getAnnIds()) >= expected  # at least one shape per image
        for image_id in coco.getImgIds():
            info = coco.imgs[image_id]
            image = Image.open(tmp_path / 'images' / info['file_name'])
            assert image.size == (info['width'], info['height']) == (64, 64)
            for ann in coco.loadAnns(coco.getAnnIds(imgIds=image_id)):
                x, y, w, h = ann['bbox']
                assert w > 2 and h > 2
                assert 0 <= x and 0 <= y and x + w <= 64 and y + h <= 64
                assert 0 < ann['area'] <= w * h
                assert ann['iscrowd'] == 0
                mask = coco.annToMask(ann)  # polygon -> mask, inside the box
                ys, xs = np.nonzero(mask)
                assert xs.min() >= x - 1 and xs.max() <= x + w and ys.min() >= y - 1
                assert ys.max() <= y + h
        image_ids |= set(coco.getImgIds())
    assert len(image_ids) == 16  # splits do not share images


def test_detection_with_another_category_table(tmp_path):
    names = [f'class_{k}' for k in range(80)]
    generate_shapes_detection(str(tmp_path), num_images=8, image_size=64, seed=0,
                              category_names=names)
    shapes_only = tmp_path / 'shapes_only'
    generate_shapes_detection(str(shapes_only), num_images=8, image_size=64, seed=0)
    for split in ('train', 'val'):
        with open(tmp_path / 'annotations' / f'{split}.json') as f:
            table = json.load(f)
        with open(shapes_only / 'annotations' / f'{split}.json') as f:
            shapes = json.load(f)
        assert [(c['id'], c['name']) for c in table['categories']] == \
            list(enumerate(names, start=1))
        # the same images and boxes, labelled with the first three categories
        assert table['annotations'] == shapes['annotations']
        assert {a['category_id'] for a in table['annotations']} <= {1, 2, 3}
    with pytest.raises(ValueError, match='category_names must be at least 3 distinct'):
        generate_shapes_detection(str(tmp_path), num_images=4, category_names=['a', 'a', 'b'])


def test_detection_boxes_tight_around_drawn_shape(tmp_path):
    generate_shapes_detection(str(tmp_path), num_images=6, image_size=96, seed=5,
                              val_fraction=0.25, max_shapes=3)
    coco = json.loads((tmp_path / 'annotations' / 'train.json').read_text())
    assert coco['annotations']
    for ann in coco['annotations']:
        x, y, w, h = ann['bbox']
        xs, ys = ann['segmentation'][0][0::2], ann['segmentation'][0][1::2]
        # the box hugs the shape outline (pixel rasterisation: within 1.5 px)
        assert abs(min(xs) - x) <= 1.5 and abs(max(xs) - (x + w)) <= 1.5
        assert abs(min(ys) - y) <= 1.5 and abs(max(ys) - (y + h)) <= 1.5
        file_name = next(image['file_name'] for image in coco['images']
                         if image['id'] == ann['image_id'])
        image = np.asarray(Image.open(tmp_path / 'images' / file_name), dtype=np.float32)
        # the shape stands out: a box corner off a circle or triangle shows background
        centre = image[y + h // 2, x + w // 2]
        corners = image[[y, y, y + h - 1, y + h - 1], [x, x + w - 1, x, x + w - 1]]
        if coco['categories'][ann['category_id'] - 1]['name'] != 'square':
            assert np.linalg.norm(corners - centre, axis=1).max() > 40


def test_segmentation_voc_layout_and_mask_values(tmp_path):
    counts = generate_shapes_segmentation(str(tmp_path), num_images=20, image_size=64, seed=0,
                                          val_fraction=0.25)
    assert counts == {'train': 15, 'val': 5}
    split_dir = tmp_path / 'ImageSets' / 'Segmentation'
    stems = {split: split_dir.joinpath(f'{split}.txt').read_text().split()
             for split in ('train', 'val')}
    assert len(stems['train']) == 15 and len(stems['val']) == 5
    assert not set(stems['train']) & set(stems['val'])
    seen = set()
    for stem in stems['train'] + stems['val']:
        image = Image.open(tmp_path / 'JPEGImages' / f'{stem}.jpg')
        mask = Image.open(tmp_path / 'SegmentationClass' / f'{stem}.png')
        assert image.mode == 'RGB' and image.size == (64, 64)
        assert mask.mode == 'L' and mask.size == (64, 64)
        values = np.asarray(mask)
        assert values.dtype == np.uint8
        assert set(np.unique(values)) <= set(range(len(SHAPE_CLASSES) + 1))
        assert (values == 0).any() and (values > 0).any()
        seen |= set(np.unique(values).tolist())
    assert seen == set(range(len(SHAPE_CLASSES) + 1))


@pytest.mark.parametrize('kwargs, argument', [
    (dict(num_images=1), 'num_images'),
    (dict(image_size=16), 'image_size'),
    (dict(seed=-1), 'seed'),
    (dict(val_fraction=1.0), 'val_fraction'),
    (dict(num_images=2, val_fraction=0.1), 'val_fraction'),
])
def test_bad_arguments_raise(tmp_path, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        generate_shapes_classification(str(tmp_path), **kwargs)


def test_generator_does_not_import_openmmlab():
    code = ('import sys; import mmdice.testing; '
            'bad = [m for m in sys.modules if m.split(".")[0] in '
            '("mmengine", "mmcv", "mmpretrain", "mmdet", "mmseg", "torch")]; '
            'assert not bad, bad')
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    subprocess.run([sys.executable, '-c', code], check=True, env=env, cwd=str(REPO_ROOT))


def test_cli_all_tasks(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    out = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools' / 'dataset_converters' / 'generate_shapes.py'),
         '--task', 'all', '--out', str(tmp_path), '--num-images', '8', '--image-size', '32',
         '--seed', '2'],
        check=True, env=env, capture_output=True, text=True).stdout
    assert 'classification: 6 train / 2 val' in out
    assert len(list((tmp_path / 'classification' / 'train').glob('*/*.png'))) == 6
    assert (tmp_path / 'detection' / 'annotations' / 'val.json').is_file()
    assert len(list((tmp_path / 'segmentation' / 'SegmentationClass').glob('*.png'))) == 8
    single = tmp_path / 'single'
    subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools' / 'dataset_converters' / 'generate_shapes.py'),
         '--task', 'classification', '--out', str(single), '--num-images', '8', '--image-size',
         '32', '--seed', '2'], check=True, env=env, capture_output=True)
    assert tree_digest(single) == tree_digest(tmp_path / 'classification')
