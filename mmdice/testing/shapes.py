"""Deterministic synthetic "shapes" data for classification, detection and
segmentation smoke training.

Every image shows shapes of :data:`SHAPE_CLASSES` (random colour, size,
position and a small tilt) drawn over a textured background (noise, a linear
gradient or stripes). Three writers produce the layouts that the OpenMMLab
codebases read without conversion:

* :func:`generate_shapes_classification` - ImageNet-style class folders
  (mmpretrain ``CustomDataset``).
* :func:`generate_shapes_detection` - one image folder and COCO json files
  (mmdet ``CocoDataset``).
* :func:`generate_shapes_segmentation` - PASCAL VOC layout with class-index
  PNG masks (mmseg ``PascalVOCDataset``).

Image ``i`` depends only on ``(seed, i)``: the first images of a larger set
equal those of a smaller one. The last ``round(num_images * val_fraction)``
images form the validation split. Only numpy and PIL are used.
"""
import json
import math
import os
import os.path as osp

import numpy as np
from PIL import Image, ImageDraw

SHAPE_CLASSES = ('circle', 'square', 'triangle')
BACKGROUNDS = ('noise', 'gradient', 'stripes')

# stream ids that keep the three tasks' random images independent
_TASK_STREAM = {'classification': 0, 'detection': 1, 'segmentation': 2}
_MIN_IMAGE_SIZE = 32
_MIN_COLOUR_DISTANCE = 180.0  # Euclidean RGB distance shape <-> background mean
_TEXTURE_CONTRAST = 40.0  # max per-channel deviation of a texture from its base colour
_JPEG_QUALITY = 95
_MAX_TILT = math.radians(10)  # rotation of squares and triangles from upright
# circumradius of a shape with the area of a unit circle
_CIRCUMRADIUS_PER_AREA_RADIUS = {
    'circle': 1.0,
    'square': math.sqrt(math.pi / 2),
    'triangle': math.sqrt(4 * math.pi / (3 * math.sqrt(3))),
}


def _check_args(num_images, image_size, seed, val_fraction):
    if not isinstance(num_images, int) or num_images < 2:
        raise ValueError(f'num_images must be an int >= 2, got {num_images!r}')
    if not isinstance(image_size, int) or image_size < _MIN_IMAGE_SIZE:
        raise ValueError(f'image_size must be an int >= {_MIN_IMAGE_SIZE}, got {image_size!r}')
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f'seed must be a non-negative int, got {seed!r}')
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f'val_fraction must be in [0, 1), got {val_fraction!r}')
    num_val = int(round(num_images * val_fraction))
    if val_fraction > 0 and not 1 <= num_val < num_images:
        raise ValueError(
            f'num_images={num_images} with val_fraction={val_fraction} leaves an empty split')
    return num_val


def _split_of(index, num_images, num_val):
    return 'val' if index >= num_images - num_val else 'train'


def _image_rng(task, seed, index):
    return np.random.default_rng([seed, _TASK_STREAM[task], index])


def _random_colour(rng):
    return rng.integers(0, 256, size=3).astype(np.float32)


def render_background(rng, image_size):
    """A textured background, float32 array (image_size, image_size, 3) in [0, 255].

    One of :data:`BACKGROUNDS`: pixel noise around a random colour, a linear
    gradient or stripes between two colours, at a random angle. The texture
    has less contrast (colours within +-_TEXTURE_CONTRAST per channel) than
    the shapes have against it.
    """
    kind = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    size = image_size
    base = rng.uniform(_TEXTURE_CONTRAST, 255 - _TEXTURE_CONTRAST, size=3)
    if kind == 'noise':
        image = base + rng.normal(0.0, _TEXTURE_CONTRAST / 3, size=(size, size, 3))
    else:
        angle = rng.uniform(0.0, math.pi)
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
        along = xs * math.cos(angle) + ys * math.sin(angle)
        first = base + rng.uniform(-_TEXTURE_CONTRAST, _TEXTURE_CONTRAST, size=3)
        second = base + rng.uniform(-_TEXTURE_CONTRAST, _TEXTURE_CONTRAST, size=3)
        if kind == 'gradient':
            weight = (along - along.min()) / max(float(np.ptp(along)), 1e-6)
        else:
            period = rng.uniform(4.0, 12.0)
            weight = (np.floor(along / (period / 2.0)) % 2).astype(np.float32)
        weight = weight[..., None]
        image = first * (1.0 - weight) + second * weight
        image = image + rng.normal(0.0, 4.0, size=image.shape)
    return np.clip(image, 0, 255).astype(np.float32)


def _contrasting_colour(rng, background_mean):
    """A random RGB colour at least _MIN_COLOUR_DISTANCE from the background mean."""
    colour = _random_colour(rng)
    for _ in range(100):
        if np.linalg.norm(colour - background_mean) >= _MIN_COLOUR_DISTANCE:
            break
        colour = _random_colour(rng)
    else:  # no luck: take the RGB corner farthest from the background
        colour = np.where(background_mean < 128, 255.0, 0.0).astype(np.float32)
    return colour


def _shape_polygon(label, centre, radius, angle):
    """Vertices of a square/triangle inscribed in a circle, or a 32-gon for a circle."""
    name = SHAPE_CLASSES[label]
    num_vertices = {'circle': 32, 'square': 4, 'triangle': 3}[name]
    cx, cy = centre
    return [(cx + radius * math.cos(angle + 2 * math.pi * k / num_vertices),
             cy + radius * math.sin(angle + 2 * math.pi * k / num_vertices))
            for k in range(num_vertices)]


def render_shape_mask(label, centre, radius, angle, image_size):
    """Boolean mask (image_size, image_size) of one shape.

    A circle has the given radius; a square and a triangle are inscribed in
    that circle, rotated by ``angle`` (radians).
    """
    canvas = Image.new('L', (image_size, image_size), 0)
    draw = ImageDraw.Draw(canvas)
    if SHAPE_CLASSES[label] == 'circle':
        cx, cy = centre
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=1)
    else:
        draw.polygon(_shape_polygon(label, centre, radius, angle), fill=1)
    return np.asarray(canvas, dtype=bool)


def _sample_shape(rng, label, image_size, min_frac, max_frac):
    """Centre, circumradius and rotation (radians) of one shape fully inside the image.

    All classes share one area distribution (size does not reveal the
    class); a triangle's circumradius, the largest for a given area, spans
    ``min_frac..max_frac`` of half the image side.
    """
    name = SHAPE_CLASSES[label]
    area_radius = rng.uniform(min_frac, max_frac) * image_size / 2.0
    area_radius /= max(_CIRCUMRADIUS_PER_AREA_RADIUS.values())
    radius = area_radius * _CIRCUMRADIUS_PER_AREA_RADIUS[name]
    margin = min(radius + 1.0, image_size / 2.0)
    centre = (rng.uniform(margin, image_size - margin), rng.uniform(margin, image_size - margin))
    # upright shapes (a square's vertex at 45 deg, a triangle's apex up), tilted by +- 10 deg
    upright = {'circle': 0.0, 'square': math.pi / 4, 'triangle': -math.pi / 2}[name]
    angle = upright + rng.uniform(-1.0, 1.0) * _MAX_TILT
    return centre, radius, angle


def _boxes_overlap(box, boxes, gap=2.0):
    x0, y0, x1, y1 = box
    return any(x0 < b[2] + gap and b[0] < x1 + gap and y0 < b[3] + gap and b[1] < y1 + gap
               for b in boxes)


def render_scene(rng, image_size, labels, min_frac, max_frac):
    """Draw shapes with the given class labels that do not overlap.

    Returns:
        tuple: ``image`` uint8 (S, S, 3), ``instances``: list of dicts with
        ``label`` (index into SHAPE_CLASSES), ``mask`` bool (S, S),
        ``bbox`` [x0, y0, x1, y1] (pixels, right/bottom exclusive) and
        ``polygon`` (flat list of x, y pixel coordinates).
    """
    image = render_background(rng, image_size)
    background_mean = image.reshape(-1, 3).mean(0)
    instances, boxes = [], []
    for label in labels:
        for _ in range(50):
            centre, radius, angle = _sample_shape(rng, label, image_size, min_frac, max_frac)
            box = (centre[0] - radius, centre[1] - radius, centre[0] + radius, centre[1] + radius)
            if not _boxes_overlap(box, boxes):
                break
        else:
            continue  # no free space left for this shape
        mask = render_shape_mask(label, centre, radius, angle, image_size)
        if not mask.any():
            continue
        boxes.append(box)
        colour = _contrasting_colour(rng, background_mean)
        shading = rng.normal(0.0, 6.0, size=(int(mask.sum()), 3))
        image[mask] = np.clip(colour + shading, 0, 255)
        ys, xs = np.nonzero(mask)
        polygon = [min(max(c, 0.0), float(image_size))
                   for vertex in _shape_polygon(label, centre, radius, angle) for c in vertex]
        instances.append(dict(
            label=int(label), mask=mask, polygon=polygon,
            bbox=[int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]))
    return image.round().astype(np.uint8), instances


def _save(array, path):
    """Save uint8 (H, W, 3) as RGB or (H, W) as mode 'L'; .jpg gets quality 95."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    image = Image.fromarray(array)
    if path.endswith('.jpg'):
        image.save(path, quality=_JPEG_QUALITY)
    else:
        image.save(path)


def generate_shapes_classification(out_dir, num_images=600, image_size=64, seed=0,
                                   val_fraction=0.25):
    """Write one centred-ish shape per image into ImageNet-style folders.

    Layout: ``out_dir/{train,val}/<class name>/<index:05d>.png``; image ``i``
    shows class ``i % len(SHAPE_CLASSES)`` (balanced splits); a triangle's
    circumcircle spans 50-95 % of the image side (other classes: same areas).

    Returns:
        dict: ``{'train': n_train, 'val': n_val}`` image counts.
    """
    num_val = _check_args(num_images, image_size, seed, val_fraction)
    counts = {'train': 0, 'val': 0}
    for index in range(num_images):
        rng = _image_rng('classification', seed, index)
        label = index % len(SHAPE_CLASSES)
        image, _ = render_scene(rng, image_size, [label], 0.5, 0.95)
        split = _split_of(index, num_images, num_val)
        _save(image, osp.join(out_dir, split, SHAPE_CLASSES[label], f'{index:05d}.png'))
        counts[split] += 1
    return counts


def _scene_labels(rng, max_shapes):
    num_shapes = int(rng.integers(1, max_shapes + 1))
    return [int(label) for label in rng.integers(0, len(SHAPE_CLASSES), size=num_shapes)]


def generate_shapes_detection(out_dir, num_images=200, image_size=128, seed=0,
                              val_fraction=0.25, max_shapes=4, category_names=SHAPE_CLASSES):
    """Write images with 1..max_shapes non-overlapping shapes and COCO json annotations.

    Layout: ``out_dir/images/<index:05d>.jpg`` and
    ``out_dir/annotations/{train,val}.json``. Boxes are tight ``[x, y, w, h]``
    pixel boxes of the drawn shapes (inside the image); category ids are
    1..K in ``category_names`` order; ``segmentation`` holds the shape
    polygon and ``area`` the mask pixel count.

    ``category_names`` is the json's category table: by default
    :data:`SHAPE_CLASSES`; another table (e.g. COCO's 80 class names, so that
    an unchanged COCO config reads the set) labels the shapes with its first
    ``len(SHAPE_CLASSES)`` categories.

    Returns:
        dict: ``{'train': n_train, 'val': n_val}`` image counts.
    """
    num_val = _check_args(num_images, image_size, seed, val_fraction)
    if not isinstance(max_shapes, int) or max_shapes < 1:
        raise ValueError(f'max_shapes must be an int >= 1, got {max_shapes!r}')
    category_names = list(category_names)
    if len(set(category_names)) != len(category_names) or \
            len(category_names) < len(SHAPE_CLASSES):
        raise ValueError(f'category_names must be at least {len(SHAPE_CLASSES)} distinct '
                         f'names, got {category_names!r}')
    supercategory = 'shape' if category_names == list(SHAPE_CLASSES) else 'none'
    categories = [dict(id=k + 1, name=name, supercategory=supercategory)
                  for k, name in enumerate(category_names)]
    splits = {split: dict(images=[], annotations=[], categories=categories)
              for split in ('train', 'val')}
    annotation_id = 1
    for index in range(num_images):
        rng = _image_rng('detection', seed, index)
        image, instances = render_scene(rng, image_size, _scene_labels(rng, max_shapes), 0.25, 0.6)
        file_name = f'{index:05d}.jpg'
        _save(image, osp.join(out_dir, 'images', file_name))
        coco = splits[_split_of(index, num_images, num_val)]
        image_id = index + 1
        coco['images'].append(dict(id=image_id, file_name=file_name,
                                   width=image_size, height=image_size))
        for instance in instances:
            x0, y0, x1, y1 = instance['bbox']
            coco['annotations'].append(dict(
                id=annotation_id, image_id=image_id, category_id=instance['label'] + 1,
                bbox=[x0, y0, x1 - x0, y1 - y0], area=int(instance['mask'].sum()),
                segmentation=[instance['polygon']], iscrowd=0))
            annotation_id += 1
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    for split, coco in splits.items():
        with open(osp.join(out_dir, 'annotations', f'{split}.json'), 'w', encoding='utf-8') as f:
            json.dump(coco, f)
    return {split: len(coco['images']) for split, coco in splits.items()}


def generate_shapes_segmentation(out_dir, num_images=200, image_size=64, seed=0,
                                 val_fraction=0.25, max_shapes=3):
    """Write images with 1..max_shapes shapes and PASCAL VOC style class masks.

    Layout: ``out_dir/JPEGImages/<index:05d>.jpg``,
    ``out_dir/SegmentationClass/<index:05d>.png`` (uint8, mode 'L': 0 =
    background, k + 1 = ``SHAPE_CLASSES[k]``) and
    ``out_dir/ImageSets/Segmentation/{train,val}.txt`` (one stem per line).

    Returns:
        dict: ``{'train': n_train, 'val': n_val}`` image counts.
    """
    num_val = _check_args(num_images, image_size, seed, val_fraction)
    if not isinstance(max_shapes, int) or max_shapes < 1:
        raise ValueError(f'max_shapes must be an int >= 1, got {max_shapes!r}')
    stems = {'train': [], 'val': []}
    for index in range(num_images):
        rng = _image_rng('segmentation', seed, index)
        image, instances = render_scene(rng, image_size, _scene_labels(rng, max_shapes), 0.3, 0.7)
        class_map = np.zeros((image_size, image_size), dtype=np.uint8)
        for instance in instances:
            class_map[instance['mask']] = instance['label'] + 1
        stem = f'{index:05d}'
        _save(image, osp.join(out_dir, 'JPEGImages', stem + '.jpg'))
        _save(class_map, osp.join(out_dir, 'SegmentationClass', stem + '.png'))
        stems[_split_of(index, num_images, num_val)].append(stem)
    split_dir = osp.join(out_dir, 'ImageSets', 'Segmentation')
    os.makedirs(split_dir, exist_ok=True)
    for split, names in stems.items():
        with open(osp.join(split_dir, f'{split}.txt'), 'w', encoding='utf-8') as f:
            f.writelines(name + '\n' for name in names)
    return {split: len(names) for split, names in stems.items()}
