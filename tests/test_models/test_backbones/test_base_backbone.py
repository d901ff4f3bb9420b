"""What the mmdice backbones share: OpenMMLab's deprecated ``pretrained`` argument,
and the mmseg swap that passes it on from ``model.pretrained``."""
import textwrap

import pytest
import torch

from mmdice.models.backbones import DiCEMobileNet, DiCENet, DiCEResNet
from mmdice.models.backbones.base_backbone import DEFAULT_INIT_CFG

SMALL = {DiCENet: dict(widen_factor=0.1, input_size=64, num_stages=2, out_indices=(3, )),
         DiCEMobileNet: dict(widen_factor=0.25, input_size=64),
         DiCEResNet: dict(widen_factor=0.25, input_size=64, depths=(1, 1, 1, 1))}
BACKBONES = list(SMALL)


@pytest.mark.parametrize('backbone', BACKBONES, ids=lambda cls: cls.__name__)
def test_pretrained_none_is_ignored(backbone):
    model = backbone(pretrained=None, **SMALL[backbone])
    assert model.init_cfg == list(DEFAULT_INIT_CFG)


@pytest.mark.parametrize('backbone', BACKBONES, ids=lambda cls: cls.__name__)
def test_pretrained_checkpoint_becomes_a_pretrained_init_cfg(backbone, tmp_path):
    source = backbone(**SMALL[backbone])
    source.init_weights()
    checkpoint = tmp_path / 'backbone.pth'
    torch.save({'state_dict': source.state_dict()}, checkpoint)
    with pytest.warns(FutureWarning, match=r"pretrained is deprecated, use init_cfg=dict\("
                      r"type='Pretrained', checkpoint="):
        model = backbone(pretrained=str(checkpoint), **SMALL[backbone])
    assert model.init_cfg == dict(type='Pretrained', checkpoint=str(checkpoint))
    model.init_weights()
    for name, tensor in source.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name


@pytest.mark.parametrize('pretrained', ['open-mmlab://resnet50_v1c', 'torchvision://resnet50'])
def test_pretrained_of_a_model_zoo_says_what_to_write(pretrained):
    with pytest.raises(ValueError) as error:
        DiCENet(pretrained=pretrained, **SMALL[DiCENet])
    message = str(error.value)
    assert '\n' not in message
    assert f'DiCENet got pretrained={pretrained!r}, the weights of another network' in message
    assert 'set model.pretrained=None in the config' in message
    assert "model.backbone.init_cfg=dict(type='Pretrained', checkpoint=PATH)" in message


def test_pretrained_and_init_cfg_together_are_refused():
    with pytest.raises(ValueError, match='init_cfg and pretrained cannot both be set'):
        DiCENet(pretrained='a.pth', init_cfg=dict(type='Pretrained', checkpoint='b.pth'),
                **SMALL[DiCENet])
    with pytest.raises(ValueError, match='pretrained must be a checkpoint path or URL, or None'):
        DiCENet(pretrained=1, **SMALL[DiCENet])


def swap_config(tmp_path, model_pretrained_line):
    """mmseg's own FCN with DiCENet swapped in, as README's recipe."""
    path = tmp_path / 'fcn_dicenet.py'
    path.write_text(textwrap.dedent(f"""
        _base_ = 'mmseg::fcn/fcn_r50-d8_4xb2-40k_cityscapes-512x1024.py'
        norm_cfg = dict(type='BN', requires_grad=True)
        model = dict(
            {model_pretrained_line}
            backbone=dict(_delete_=True, type='mmdice.DiCENet', widen_factor=0.1,
                          input_size=64, num_stages=2, out_indices=(2, 3)),
            decode_head=dict(in_index=1, in_channels=32, norm_cfg=norm_cfg),
            auxiliary_head=dict(in_index=0, in_channels=16, norm_cfg=norm_cfg))
    """))
    return str(path)


def build_segmentor(config):
    pytest.importorskip('mmseg')
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    cfg = Config.fromfile(config)
    init_default_scope('mmseg')
    return cfg, MODELS.build(cfg.model)


def test_mmseg_swap_with_pretrained_none_builds(tmp_path):
    cfg, segmentor = build_segmentor(swap_config(tmp_path, 'pretrained=None,'))
    assert cfg.model.pretrained is None
    assert type(segmentor.backbone).__name__ == 'DiCENet'
    assert segmentor.backbone.init_cfg == list(DEFAULT_INIT_CFG)


def test_mmseg_swap_inheriting_the_resnet_weights_says_what_to_write(tmp_path):
    config = swap_config(tmp_path, '')
    with pytest.raises(ValueError, match=r"DiCENet got pretrained='open-mmlab://resnet50_v1c'.*"
                       r'set model\.pretrained=None in the config'):
        build_segmentor(config)
