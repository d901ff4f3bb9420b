"""An mmdice backbone's returned channels against what its neck or head takes: the
README's swap configs fit, and each mismatch is one line naming both sides and the
channels of every level."""
from pathlib import Path

import pytest
from mmengine.config import Config
from torch import nn

from mmdice.engine.launch import build_model
from mmdice.models import DiCENet
from mmdice.utils import ChannelMismatchError, check_backbone_channels

REPO_ROOT = Path(__file__).resolve().parents[2]
SWAP_DIR = REPO_ROOT / 'tests' / 'data' / 'configs' / 'swap'
LEVELS = 'DiCENet.level_channels: level 0: 24, level 1: 24, level 2: 116, level 3: 232, level 4: 464'


def swap(name, codebase, **options):
    pytest.importorskip(codebase)
    cfg = Config.fromfile(str(SWAP_DIR / name))
    cfg.merge_from_dict(options)
    return build_model(cfg)


@pytest.mark.parametrize('name,codebase', [
    ('retinanet_dicenet-s1.0_fpn_1x_coco.py', 'mmdet'),
    ('faster-rcnn_dicenet-s1.0_fpn_1x_coco.py', 'mmdet'),
    ('fcn_dicenet-s1.0_4xb2-40k_cityscapes-512x1024.py', 'mmseg'),
    ('deeplabv3_dicenet-s1.0_4xb2-40k_cityscapes-512x1024.py', 'mmseg'),
    ('resnet50-head_dicenet-s1.0_8xb32_in1k.py', 'mmpretrain')])
def test_swap_configs_fit(name, codebase):
    check_backbone_channels(swap(name, codebase))


def test_ssd_config_fits():
    pytest.importorskip('mmdet')
    check_backbone_channels(build_model(Config.fromfile(
        str(REPO_ROOT / 'configs' / 'ssd' / 'dicenet_ssd512_coco.py'))))


def test_fpn_given_other_channels():
    model = swap('retinanet_dicenet-s1.0_fpn_1x_coco.py', 'mmdet',
                 **{'model.backbone.out_indices': (2, 3, 4)})
    with pytest.raises(ChannelMismatchError) as error:
        check_backbone_channels(model)
    assert str(error.value) == (
        'backbone mmdice.DiCENet returns [116, 232, 464] channels (out_indices=(2, 3, 4)) but '
        f'neck (FPN) takes in_channels=[24, 116, 232, 464]; {LEVELS}. Give model.neck the '
        'channels of the levels returned, or return other levels with model.backbone.out_indices')


@pytest.mark.parametrize('options,takes', [
    ({'model.decode_head.in_channels': 232},
     'decode_head (FCNHead) takes in_channels=232 at in_index=1 (that level has 464)'),
    ({'model.auxiliary_head.in_index': 2},
     'auxiliary_head (FCNHead) takes in_index=2, not among the 2 returned levels'),
])
def test_mmseg_heads_count_in_the_returned_levels(options, takes):
    model = swap('fcn_dicenet-s1.0_4xb2-40k_cityscapes-512x1024.py', 'mmseg', **options)
    with pytest.raises(ChannelMismatchError, match='returns \\[232, 464\\] channels') as error:
        check_backbone_channels(model)
    assert takes in str(error.value) and LEVELS in str(error.value)


def test_classifier_head_takes_the_last_level():
    model = swap('resnet50-head_dicenet-s1.0_8xb32_in1k.py', 'mmpretrain',
                 **{'model.backbone.out_indices': (3, )})
    with pytest.raises(ChannelMismatchError,
                       match=r'returns \[232\] channels .* head \(LinearClsHead\) takes '
                             r'in_channels=464 \(from the last level\)'):
        check_backbone_channels(model)


class Taker(nn.Module):
    """A neck or head that records what it takes, as the codebases' modules do."""

    def __init__(self, in_channels, **attributes):
        super().__init__()
        self.in_channels = in_channels
        for key, value in attributes.items():
            setattr(self, key, value)


def model_of(backbone, **parts):
    model = nn.Module()
    model.backbone = backbone
    for key, part in parts.items():
        setattr(model, key, part)
    return model


def test_dense_head_without_neck_and_seg_input_transforms():
    backbone = DiCENet(widen_factor=1.0, out_indices=(2, 3))
    check_backbone_channels(model_of(backbone, bbox_head=Taker([116, 232])))
    with pytest.raises(ChannelMismatchError, match=r'bbox_head \(Taker\) takes in_channels=116 '
                                                   r'for every level'):
        check_backbone_channels(model_of(backbone, bbox_head=Taker(116)))
    concat = Taker(348, in_index=[0, 1], input_transform='resize_concat')
    check_backbone_channels(model_of(backbone, decode_head=concat))
    select = Taker([116, 230], in_index=[0, 1], input_transform='multiple_select')
    with pytest.raises(ChannelMismatchError, match=r'in_channels=\[116, 230\] at in_index=\[0, 1\] '
                                                   r'\(those levels have \[116, 232\]\)'):
        check_backbone_channels(model_of(backbone, decode_head=select))


def test_other_backbones_and_unrecorded_channels_are_not_checked():
    check_backbone_channels(model_of(nn.Conv2d(3, 8, 1), neck=Taker([1, 2])))
    neck_without_channels = nn.Identity()
    check_backbone_channels(model_of(DiCENet(widen_factor=1.0), neck=neck_without_channels,
                                     bbox_head=Taker(7)))
