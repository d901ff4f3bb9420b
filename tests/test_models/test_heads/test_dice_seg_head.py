"""DiCESegHead, its layers and the DiCENet segmentor built from our configs."""
import os.path as osp

import pytest
import torch

pytest.importorskip('mmseg')
from mmengine.config import Config, ConfigDict  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import mmdice.models  # noqa: E402,F401
from mmdice.models.heads.dice_seg_head import DiCESegHead  # noqa: E402
from mmdice.models.layers.efficient_pw_conv import EfficientPWConv  # noqa: E402
from mmdice.models.layers.efficient_pyr_pool import EfficientPyrPool  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
CONFIG_DIR = osp.join(REPO, 'configs', 'dicenet_seg')


def build_segmentor(name, **test_cfg):
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    if test_cfg:
        cfg.model.test_cfg = test_cfg
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.eval()


def encoder_maps(batch, channels, height, width):
    return [torch.randn(batch, c, height // s, width // s)
            for c, s in zip(channels, (2, 4, 8, 16))]


def test_efficient_pw_conv():
    layer = EfficientPWConv(116, 64)
    assert layer.expansion.conv.groups == 4  # gcd(116, 64)
    assert tuple(layer.expansion.conv.weight.shape) == (64, 29, 3, 3)
    assert tuple(layer.gate.conv.weight.shape) == (64, 116, 1, 1)
    assert layer.gate.conv.bias is None
    assert layer(torch.randn(2, 116, 8, 12)).shape == (2, 64, 8, 12)
    with pytest.raises(ValueError, match='out_channels'):
        EfficientPWConv(8, 0)


def test_efficient_pyr_pool():
    pool = EfficientPyrPool(32, 10, 48, scales=(0.5, 2.0, 1.0, 0.1, 1.5))
    assert pool.scales == (2.0, 1.5, 1.0, 0.5, 0.1)
    assert tuple(pool.merge_conv.conv.weight.shape) == (10, 5, 3, 3)
    assert pool.merge_norm.num_features == 50
    # 4x4 maps: scale 0.1 pools *up* to the 5x5 minimum, as in the reference.
    for size in ((4, 4), (16, 24)):
        assert pool(torch.randn(2, 32, *size)).shape == (2, 48, *size)
    last = EfficientPyrPool(32, 10, None)
    assert last.out_proj is None
    assert last(torch.randn(1, 32, 8, 8)).shape == (1, 10, 8, 8)
    with pytest.raises(ValueError, match='scales'):
        EfficientPyrPool(32, 10, 48, scales=())
    with pytest.raises(ValueError, match='proj_channels'):
        EfficientPyrPool(32, 0, 48)


def test_head_shapes_and_clean_state_dict():
    channels = [24, 24, 116, 232]
    head = DiCESegHead(in_channels=channels, channels=10, num_classes=21)
    head.init_weights()
    assert head.align_corners is True
    assert head.dropout is None
    # the last pyramid pool ends at p channels; conv_seg is its 1x1 conv with bias
    assert head.pyramid_pools[3].out_proj is None
    assert tuple(head.conv_seg.weight.shape) == (21, 10, 1, 1)
    assert head.conv_seg.bias is not None
    assert sum(p.numel() for p in head.parameters()) == 38511  # EdgeNets decoder, s=1.0
    feats = encoder_maps(2, channels, 96, 160)
    logits = head(feats)
    assert logits.shape == (2, 21, 48, 80)  # stride 2
    logits.square().mean().backward()
    unused = [name for name, p in head.named_parameters() if p.grad is None]
    assert not unused


def test_head_rejects_bad_arguments():
    with pytest.raises(ValueError, match='in_channels'):
        DiCESegHead(in_channels=[24, 116, 232], channels=10, num_classes=21)
    with pytest.raises(ValueError, match='decoder_channels'):
        DiCESegHead(in_channels=[24, 24, 116, 232], channels=10, num_classes=21,
                    decoder_channels=(64, 48))
    with pytest.raises(ValueError, match='input_transform'):
        DiCESegHead(in_channels=[24, 24, 116, 232], channels=10, num_classes=21,
                    input_transform='resize_concat')


@pytest.mark.parametrize('size', [(64, 64), (96, 160), (144, 80)])
def test_segmentor_whole_mode_any_multiple_of_16(size):
    model = build_segmentor('dicenet-s0.5_1xb40-100e_voc12aug-256x256.py')
    assert model.align_corners is True
    inputs = torch.randn(1, 3, *size)
    with torch.no_grad():
        assert model(inputs, mode='tensor').shape == (1, 21, size[0] // 2, size[1] // 2)
        meta = dict(img_shape=size, pad_shape=size, ori_shape=size)
        assert model.inference(inputs, [meta]).shape == (1, 21, *size)


def test_segmentor_slide_and_whole_predict():
    from mmseg.structures import SegDataSample
    size = (112, 144)
    model = build_segmentor('dicenet-s0.5_1xb40-100e_voc12aug-256x256.py', mode='slide',
                            crop_size=(64, 64), stride=(48, 48))
    inputs = torch.randn(1, 3, *size)
    sample = SegDataSample(metainfo=dict(img_shape=size, pad_shape=size, ori_shape=size))
    with torch.no_grad():
        slide = model.predict(inputs, [sample])[0]
        model.test_cfg = ConfigDict(mode='whole')
        whole = model.predict(inputs, [SegDataSample(metainfo=sample.metainfo)])[0]
    for result in (slide, whole):
        assert result.seg_logits.data.shape == (21, *size)
        assert result.pred_sem_seg.data.shape == (1, *size)
        assert torch.isfinite(result.seg_logits.data).all()


def test_segmentor_loss_backward():
    from mmseg.structures import SegDataSample
    from mmengine.structures import PixelData
    model = build_segmentor('dicenet-s0.5_1xb40-100e_voc12aug-256x256.py').train()
    inputs = torch.randn(2, 3, 64, 64)
    samples = []
    for _ in range(2):
        sample = SegDataSample(metainfo=dict(img_shape=(64, 64), pad_shape=(64, 64)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 21, (1, 64, 64)))
        samples.append(sample)
    losses = model.loss(inputs, samples)
    losses['decode.loss_ce'].backward()
    assert torch.isfinite(losses['decode.loss_ce'])
    assert model.decode_head.conv_seg.weight.grad is not None


# EdgeNets README / spec 6.3: params and conv multiply-adds (M) of the PASCAL models.
COMPLEXITY = [
    ('dicenet-s0.5_1xb40-100e_voc12aug-256x256.py', 256, 76359, 82.16),
    ('dicenet-s0.5_1xb32-100e_voc12aug-384x384.py', 384, 76359, 182.52),
    ('dicenet-s1.0_1xb40-100e_voc12aug-256x256.py', 256, 283387, 141.37),
    ('dicenet-s1.0_1xb32-100e_voc12aug-384x384.py', 384, 283387, 312.38),
    ('dicenet-s1.75_1xb40-100e_voc12aug-256x256.py', 256, 807951, 289.79),
    ('dicenet-s1.75_1xb32-100e_voc12aug-384x384.py', 384, 807951, 641.60),
]


@pytest.mark.parametrize('config,size,params,mflops', COMPLEXITY)
def test_params_and_flops_match_edgenets(config, size, params, mflops):
    from mmdice.models.utils import count_complexity
    model = build_segmentor(config)
    result = count_complexity(model, (torch.randn(1, 3, size, size), ))
    assert result['params'] == pytest.approx(params, rel=0.01)
    assert result['paper_flops'] / 1e6 == pytest.approx(mflops, rel=0.01)
