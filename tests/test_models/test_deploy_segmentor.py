"""The deploy form of a segmentor equals its training form; the deploy config loads it.

The authors' converted VOC segmentor needs the EdgeNets weights
($MMDICE_EDGENETS_WEIGHTS, default ../shared/edgenets_weights); its tests skip without
them. Their BatchNorms contain dead channels (running_var ~ 5.6e-45).
"""
import copy
import os
import os.path as osp

import pytest
import torch
from mmcv.cnn import ConvModule

pytest.importorskip('mmseg')

from mmengine.config import Config  # noqa: E402

from mmdice.apis import (build_model_from_config, convert_edgenets_checkpoint,  # noqa: E402
                         deploy_cfg_options)
from mmdice.models import switch_to_deploy  # noqa: E402

from test_deploy import RELATIVE_TOLERANCE, randomize_statistics, relative_error  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
WEIGHTS = os.environ.get('MMDICE_EDGENETS_WEIGHTS',
                         osp.join(REPO, '..', 'shared', 'edgenets_weights'))
SOURCE = osp.join(WEIGHTS, 'dicenet_s_1.0_pascal_384x384.pth')
CONFIG = osp.join(REPO, 'configs', 'dicenet_seg', 'dicenet-s1.0_1xb32-100e_voc12aug-384x384.py')
SHAPES_CONFIG = osp.join(REPO, 'configs', 'dicenet_seg', 'dicenet-s0.5_1xb16-20e_shapes-64x64.py')


@pytest.fixture(scope='module')
def segmentor(tmp_path_factory):
    if not osp.isfile(SOURCE):
        pytest.skip(f'{SOURCE} not found (set MMDICE_EDGENETS_WEIGHTS)')
    from mmengine.runner import load_checkpoint
    checkpoint = tmp_path_factory.mktemp('ckpt') / 'dicenet-s1.0_voc12aug-384x384.pth'
    convert_edgenets_checkpoint(SOURCE, str(checkpoint))
    model = build_model_from_config(CONFIG)
    load_checkpoint(model, str(checkpoint), map_location='cpu', strict=True)
    return model


@pytest.mark.parametrize('size', [224, 160])  # the build size (fused op) and another one
def test_deploy_segmentor_matches_training_form(segmentor, size):
    deployed = switch_to_deploy(copy.deepcopy(segmentor))
    torch.manual_seed(0)
    x = torch.randn(1, 3, size, size)
    meta = [dict(img_shape=(size, size))]
    with torch.no_grad():
        expected = segmentor.encode_decode(x, meta)
        actual = deployed.encode_decode(x, meta)
    error = ((actual - expected).abs().max() / expected.abs().max()).item()
    assert error < 1e-4, f'relative error {error:.2e}'
    assert torch.equal(actual.argmax(1), expected.argmax(1))


def test_deploy_config_loads_the_converted_segmentor():
    torch.manual_seed(0)
    trained = randomize_statistics(build_model_from_config(SHAPES_CONFIG))
    deployed = switch_to_deploy(copy.deepcopy(trained))
    options = deploy_cfg_options(deployed)
    assert options == ['model.backbone.deploy=True', 'model.decode_head.deploy=True']
    assert not any(module.with_norm for module in deployed.decode_head.modules()
                   if isinstance(module, ConvModule))
    cfg = Config.fromfile(SHAPES_CONFIG)
    cfg.merge_from_dict({option.split('=')[0]: True for option in options})
    built = build_model_from_config(cfg)
    assert built.decode_head.deploy
    built.load_state_dict(deployed.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        error = relative_error(built(x, mode='tensor'), trained(x, mode='tensor'))
    assert error < RELATIVE_TOLERANCE
