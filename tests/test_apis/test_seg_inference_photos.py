"""The converted s=1.0 PASCAL model on real photographs through mmseg's API.

skimage's chelsea() is a cat and astronaut() a person; the model must say so.
Preprocessing as the EdgeNets test script: resize to the model size (384x384),
ImageNet mean/std on RGB (the config's data preprocessor, bgr_to_rgb=True).
"""
import os
import os.path as osp

import numpy as np
import pytest

pytest.importorskip('mmseg')
skimage_data = pytest.importorskip('skimage.data')

import mmdice.models  # noqa: E402,F401
from mmdice.apis import convert_edgenets_checkpoint  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
WEIGHTS = os.environ.get('MMDICE_EDGENETS_WEIGHTS',
                         osp.join(REPO, '..', 'shared', 'edgenets_weights'))
SOURCE = osp.join(WEIGHTS, 'dicenet_s_1.0_pascal_384x384.pth')
CONFIG = osp.join(REPO, 'configs', 'dicenet_seg', 'dicenet-s1.0_1xb32-100e_voc12aug-384x384.py')
CAT, PERSON = 8, 15  # VOC class indices


@pytest.fixture(scope='module')
def segmentor(tmp_path_factory):
    if not osp.isfile(SOURCE):
        pytest.skip(f'{SOURCE} not found (set MMDICE_EDGENETS_WEIGHTS)')
    from mmseg.apis import init_model
    checkpoint = tmp_path_factory.mktemp('ckpt') / 'dicenet-s1.0_voc12aug-384x384.pth'
    convert_edgenets_checkpoint(SOURCE, str(checkpoint))
    return init_model(CONFIG, str(checkpoint), device='cpu')


def segment(model, rgb):
    from mmseg.apis import inference_model
    result = inference_model(model, np.ascontiguousarray(rgb[..., ::-1]))  # mmseg expects BGR
    return result, result.pred_sem_seg.data[0].numpy()


def test_cat_photo(segmentor, tmp_path):
    from mmseg.apis import show_result_pyplot
    from PIL import Image
    assert segmentor.dataset_meta['classes'][CAT] == 'cat'
    rgb = skimage_data.chelsea()
    result, labels = segment(segmentor, rgb)
    assert labels.shape == rgb.shape[:2]
    cat_fraction = (labels == CAT).mean()
    print(f'chelsea: cat pixel fraction {cat_fraction:.3f}')
    assert cat_fraction > 0.5
    overlay = tmp_path / 'chelsea_overlay.png'
    show_result_pyplot(segmentor, np.ascontiguousarray(rgb[..., ::-1]), result, show=False,
                       with_labels=False, out_file=str(overlay))
    with Image.open(overlay) as image:
        image.verify()
    with Image.open(overlay) as image:
        assert image.size == (rgb.shape[1], rgb.shape[0])
        assert np.asarray(image.convert('RGB')).std() > 0


def test_person_photo(segmentor):
    rgb = skimage_data.astronaut()
    _, labels = segment(segmentor, rgb)
    person_pixels = int((labels == PERSON).sum())
    print(f'astronaut: {person_pixels} person pixels ({person_pixels / labels.size:.3f})')
    assert person_pixels > 0.1 * labels.size
    assert np.bincount(labels.ravel(), minlength=21).argmax() in (0, PERSON)
