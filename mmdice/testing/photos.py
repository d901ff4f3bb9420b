"""Real photographs shipped with scikit-image, split into disjoint calibration
and evaluation sets for the int8 quantization checks.

Evaluation: photos with PASCAL VOC objects (a person, a cat, a motorbike, a
cup on a table). Calibration: every other real photograph scikit-image ships
without a download (grayscale ones as three equal channels), each also
flipped left-right and cropped to its four corner crops of 3/4 height and width, so that
the activation ranges see varied content. No calibration image is taken from
an evaluation photo (the right view of the stereo motorcycle pair is left out
too: it shows the same scene as the evaluation image).
"""
import os
import os.path as osp
from typing import Dict, List

import numpy as np

#: skimage.data functions of the evaluation photos.
EVALUATION_PHOTOS = ('astronaut', 'chelsea', 'stereo_motorcycle', 'coffee')
#: skimage.data functions of the calibration photos.
CALIBRATION_PHOTOS = ('rocket', 'camera', 'hubble_deep_field', 'immunohistochemistry', 'retina',
                      'clock', 'coins', 'brick', 'grass', 'gravel', 'moon', 'page', 'text')


def load_photo(name: str) -> np.ndarray:
    """RGB uint8 array of ``skimage.data.<name>()`` (a pair: its first image)."""
    import skimage.data
    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):
        image = image[0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8)


def _variants(image: np.ndarray) -> Dict[str, np.ndarray]:
    h, w = image.shape[:2]
    crops = {'full': image, 'flip': image[:, ::-1]}
    for tag, (top, left) in {'tl': (0, 0), 'tr': (0, w // 4), 'bl': (h // 4, 0),
                             'br': (h // 4, w // 4)}.items():
        crops[tag] = image[top:top + 3 * h // 4, left:left + 3 * w // 4]
    return crops


def write_photos(folder: str, split: str) -> List[str]:
    """Write the ``split`` ('calibration' or 'evaluation') photos as PNG files in
    ``folder``; returns their paths (sorted). Evaluation photos are written once
    each, unchanged; calibration photos with their flip and four crops."""
    import cv2
    os.makedirs(folder, exist_ok=True)
    paths = []
    names = CALIBRATION_PHOTOS if split == 'calibration' else EVALUATION_PHOTOS
    for name in names:
        image = load_photo(name)
        images = _variants(image) if split == 'calibration' else {'full': image}
        for tag, variant in images.items():
            path = osp.join(folder, f'{name}_{tag}.png' if split == 'calibration' else
                            f'{name}.png')
            if not osp.exists(path):
                cv2.imwrite(path, np.ascontiguousarray(variant[..., ::-1]))
            paths.append(path)
    return sorted(paths)
