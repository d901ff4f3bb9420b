"""int8 of a released checkpoint: the authors' DiCENet s=0.5 VOC segmentor
(256x256), converted, quantized with calibration photos (mmdice.testing.photos:
no evaluation photo among them) and compared with fp32 on two other photos
(astronaut, chelsea). Skips without ../shared/edgenets_weights."""
import importlib.util
import os
import os.path as osp

import pytest

pytest.importorskip('openvino')
pytest.importorskip('nncf')
pytest.importorskip('onnxscript')
pytest.importorskip('skimage')

from mmdice.ops import EXT_AVAILABLE  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
WEIGHTS = os.environ.get('MMDICE_EDGENETS_WEIGHTS',
                         osp.join(REPO, '..', 'shared', 'edgenets_weights'))
SOURCE = osp.join(WEIGHTS, 'dicenet_s_0.5_pascal_256x256.pth')


def load_tool():
    path = osp.join(REPO, 'tools', 'analysis_tools', 'quantize_voc_photos.py')
    spec = importlib.util.spec_from_file_location('quantize_voc_photos', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def row(tmp_path_factory):
    if not EXT_AVAILABLE:
        pytest.skip('mmdice._ext is not built')
    if not osp.isfile(SOURCE):
        pytest.skip(f'{SOURCE} not found (set MMDICE_EDGENETS_WEIGHTS)')
    from mmdice.testing.photos import CALIBRATION_PHOTOS, write_photos
    tmp_path = tmp_path_factory.mktemp('quantize_photos')
    calib = [path for path in write_photos(str(tmp_path / 'calib'), 'calibration')
             if osp.basename(path).rsplit('_', 1)[-1] in ('full.png', 'flip.png')]
    assert len(calib) == 2 * len(CALIBRATION_PHOTOS)
    evaluation = [path for path in write_photos(str(tmp_path / 'eval'), 'evaluation')
                  if osp.basename(path) in ('astronaut.png', 'chelsea.png')]
    assert len(evaluation) == 2
    assert not {osp.basename(p) for p in evaluation} & {osp.basename(p) for p in calib}
    result = load_tool().quantize_checkpoint('0.5', 256, calib, evaluation,
                                             str(tmp_path / 'out'), weights=WEIGHTS)
    print(result)
    return result


def test_released_checkpoint_int8_runs_on_two_photos(row):
    """The int8 model runs and is far from random on the photos (measured
    2026-12-03: agreement about 0.4-0.6 with the default NNCF settings)."""
    assert 0 < row['mean_abs_logit_diff'] < 5
    assert row['argmax_agreement'] >= 0.25
