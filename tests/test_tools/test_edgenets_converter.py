"""EdgeNets checkpoint conversion: strict loading and numeric equivalence.

The equivalence check runs an independent functional re-implementation of the
authors' forward (reference key names and channel order: concat [D, H, W] ->
BN/PReLU over 3C -> Shuffle(3), per-row / per-column DimConv kernels applied by
explicit shifts, EfficientPyrPool / EfficientPWConv decoder) on the ORIGINAL
checkpoint and compares it with our converted mmseg model.
"""
import math
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip('mmseg')
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import mmdice.models  # noqa: E402,F401
from mmdice.apis import convert_edgenets_checkpoint, load_edgenets_state_dict  # noqa: E402
from mmdice.models.utils.edgenets_converter import (convert_edgenets_state_dict,  # noqa: E402
                                                    reindex_dim_channels)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
WEIGHTS = os.environ.get('MMDICE_EDGENETS_WEIGHTS',
                         osp.join(REPO, '..', 'shared', 'edgenets_weights'))
CONFIG_DIR = osp.join(REPO, 'configs', 'dicenet_seg')
EPS = 1e-5
needs_weights = pytest.mark.skipif(
    not osp.isdir(WEIGHTS), reason=f'EdgeNets weights not found at {WEIGHTS} '
    '(set MMDICE_EDGENETS_WEIGHTS)')


def _weight_files():
    if not osp.isdir(WEIGHTS):
        return []
    return sorted(f for f in os.listdir(WEIGHTS) if f.startswith('dicenet_') and f.endswith('.pth'))


def config_for(filename):
    """Our config matching an EdgeNets file name dicenet_s_<s>_<pascal|city>_<WxH>.pth."""
    _, _, scale, dataset, size = osp.splitext(filename)[0].split('_')
    width, height = (int(v) for v in size.split('x'))
    if dataset == 'pascal':
        batch = {256: 40, 384: 32}[width]
        name = f'dicenet-s{scale}_1xb{batch}-100e_voc12aug-{height}x{width}.py'
    else:
        batch = {512: 25, 1024: 6}[width]
        name = f'dicenet-s{scale}_1xb{batch}-100e_cityscapes-{height}x{width}.py'
    return osp.join(CONFIG_DIR, name)


def build_segmentor(config_path):
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    return MODELS.build(Config.fromfile(config_path).model)


# ----------------------------------------------------------------------------
# Independent functional reference (EdgeNets semantics, reference key names).
# ----------------------------------------------------------------------------
def ref_bn(sd, prefix, x):
    return F.batch_norm(x, sd[prefix + '.running_mean'], sd[prefix + '.running_var'],
                        sd[prefix + '.weight'], sd[prefix + '.bias'], False, 0.0, EPS)


def ref_cbr(sd, prefix, x, stride=1):
    weight = sd[prefix + '.cbr.0.weight']
    groups = x.shape[1] // weight.shape[1]
    x = F.conv2d(x, weight, stride=stride, padding=weight.shape[-1] // 2, groups=groups)
    return F.prelu(ref_bn(sd, prefix + '.cbr.1', x), sd[prefix + '.cbr.2.weight'])


def ref_shuffle(x, groups):
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).permute(0, 2, 1, 3, 4).reshape(n, c, h, w)


def ref_resize(x, size):
    """EdgeNets dynamic scaling: bilinear (align_corners) up, adaptive avg pool down."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    grow = size[0] > x.shape[2] or size[1] > x.shape[3]
    if grow:
        return F.interpolate(x, size=size, mode='bilinear', align_corners=True)
    return F.adaptive_avg_pool2d(x, size)


def ref_height_wise(x, kernels):
    """y[n,c,h,w] = sum_{a,b} K_h[a,b] x[n,c+a-1,h,w+b-1], one kernel per row h."""
    n, c, h, w = x.shape
    padded = F.pad(x, (1, 1, 0, 0, 1, 1))  # width by 1, channels by 1
    out = torch.zeros_like(x)
    for a in range(3):
        for b in range(3):
            out += kernels[:, 0, a, b].view(1, 1, h, 1) * padded[:, a:a + c, :, b:b + w]
    return out


def ref_width_wise(x, kernels):
    """y[n,c,h,w] = sum_{a,b} K_w[a,b] x[n,c+b-1,h+a-1,w], one kernel per column w."""
    n, c, h, w = x.shape
    padded = F.pad(x, (0, 0, 1, 1, 1, 1))  # height by 1, channels by 1
    out = torch.zeros_like(x)
    for a in range(3):
        for b in range(3):
            out += kernels[:, 0, a, b].view(1, 1, 1, w) * padded[:, b:b + c, a:a + h, :]
    return out


def ref_dice(sd, p, x):
    n, c, h, w = x.shape
    y_depth = F.conv2d(x, sd[p + '.conv_channel.weight'], padding=1, groups=c)
    k_height, k_width = sd[p + '.conv_height.weight'], sd[p + '.conv_width.weight']
    rows, cols = k_height.shape[0], k_width.shape[0]
    y_height = ref_resize(ref_height_wise(ref_resize(x, (rows, w)), k_height), (h, w))
    y_width = ref_resize(ref_width_wise(ref_resize(x, (h, cols)), k_width), (h, w))
    y = torch.cat([y_depth, y_height, y_width], 1)
    y = F.prelu(ref_bn(sd, p + '.br_act.br.0', y), sd[p + '.br_act.br.1.weight'])
    y = ref_cbr(sd, p + '.weight_avg_layer', ref_shuffle(y, 3))
    gate = F.adaptive_avg_pool2d(y, 1)
    gate = F.relu(F.conv2d(gate, sd[p + '.linear_comb_layer.1.weight']))
    gate = torch.sigmoid(F.conv2d(gate, sd[p + '.linear_comb_layer.3.weight']))
    return ref_cbr(sd, p + '.proj_layer', y) * gate


def ref_level(sd, level, x):
    block = 0
    while f'{level}.{block}.' in ' '.join(k[:len(level) + 4] for k in sd if k.startswith(level)):
        p = f'{level}.{block}'
        if p + '.left_layer.0.cbr.0.weight' in sd:
            left = ref_cbr(sd, p + '.left_layer.1', ref_cbr(sd, p + '.left_layer.0', x, stride=2))
            right = F.avg_pool2d(x, 3, 2, 1)
            right = ref_cbr(sd, p + '.right_layer.2', ref_dice(sd, p + '.right_layer.1', right))
            x = ref_shuffle(torch.cat([left, right], 1), 2)
        else:
            keep = round(0.5 * x.shape[1])
            right = ref_dice(sd, p + '.layer_right.1',
                             ref_cbr(sd, p + '.layer_right.0', x[:, keep:]))
            x = ref_shuffle(torch.cat([x[:, :keep], right], 1), 2)
        block += 1
    return x


def ref_pyr_pool(sd, p, x):
    x = ref_cbr(sd, p + '.projection_layer', x)
    h, w = x.shape[2:]
    outs = []
    for i, scale in enumerate((2.0, 1.5, 1.0, 0.5, 0.1)):
        weight = sd[f'{p}.stages.{i}.weight']
        size = (max(5, math.ceil(h * scale)), max(5, math.ceil(w * scale)))
        conv = lambda t, weight=weight: F.conv2d(t, weight, padding=1, groups=t.shape[1])  # noqa
        if scale < 1:
            y = F.interpolate(conv(F.adaptive_avg_pool2d(x, size)), (h, w), mode='bilinear',
                              align_corners=True)
        elif scale > 1:
            y = F.adaptive_avg_pool2d(
                conv(F.interpolate(x, size, mode='bilinear', align_corners=True)), (h, w))
        else:
            y = conv(x)
        outs.append(y)
    y = torch.cat(outs, 1)
    y = F.prelu(ref_bn(sd, p + '.merge_layer.0.br.0', y), sd[p + '.merge_layer.0.br.1.weight'])
    y = ref_cbr(sd, p + '.merge_layer.2', ref_shuffle(y, 5))
    y = F.conv2d(y, sd[p + '.merge_layer.3.weight'], sd.get(p + '.merge_layer.3.bias'))
    if p + '.br.br.0.weight' in sd:
        y = F.prelu(ref_bn(sd, p + '.br.br.0', y), sd[p + '.br.br.1.weight'])
    return y


def ref_pw_conv(sd, p, x):
    gate = torch.sigmoid(F.conv2d(F.adaptive_avg_pool2d(x, 1), sd[p + '.wt_layer.1.weight']))
    return ref_cbr(sd, p + '.expansion_layer', x) * gate


def ref_segmentation_forward(sd, image):
    """EdgeNets DiCENetSegmentation.forward on a normalised (N, 3, H, W) image."""
    sd = {k[len('base_net.'):] if k.startswith('base_net.') else k: v for k, v in sd.items()}
    enc1 = ref_cbr(sd, 'level1', image, stride=2)
    enc2 = F.max_pool2d(enc1, 3, 2, 1)
    enc3 = ref_level(sd, 'level3', enc2)
    enc4 = ref_level(sd, 'level4', enc3)
    x = ref_pyr_pool(sd, 'eff_pool_16x16', enc4)
    for size, skip in (('32x32', enc3), ('64x64', enc2), ('128x128', enc1)):
        x = F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=True)
        x = x + ref_pw_conv(sd, f'proj_enc_{size}', skip)
        x = F.prelu(ref_bn(sd, f'bu_br_{size}.0', x), sd[f'bu_br_{size}.1.weight'])
        x = ref_pyr_pool(sd, f'eff_pool_{size}', x)
    return F.interpolate(x, size=image.shape[2:], mode='bilinear', align_corners=True)


def photo_batch(size):
    """skimage's chelsea() resized to size (H, W), ImageNet-normalised (1, 3, H, W)."""
    data = pytest.importorskip('skimage.data')
    image = torch.from_numpy(np.ascontiguousarray(data.chelsea())).permute(2, 0, 1)[None].float()
    image = F.interpolate(image / 255.0, size=size, mode='bilinear', align_corners=False)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (image - mean) / std


# ----------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------
def test_reindex_dim_channels():
    ref = torch.arange(12.)  # C = 4: [D0..D3, H0..H3, W0..W3]
    ours = reindex_dim_channels(ref)
    channels = 4
    for c in range(channels):
        for g in range(3):
            assert ours[3 * c + g] == ref[g * channels + c]
    with pytest.raises(ValueError, match='3C'):
        reindex_dim_channels(torch.zeros(5))


@needs_weights
@pytest.mark.parametrize('filename', _weight_files())
def test_every_checkpoint_loads_strictly(filename, tmp_path):
    dst = tmp_path / 'converted.pth'
    result = convert_edgenets_checkpoint(osp.join(WEIGHTS, filename), str(dst))
    scale = float(filename.split('_')[2])
    assert result.widen_factor == scale
    assert result.input_size == (224, 224)
    assert result.num_classes == (21 if '_pascal_' in filename else 20)
    model = build_segmentor(config_for(filename))
    checkpoint = torch.load(dst, map_location='cpu', weights_only=True)
    assert checkpoint['meta']['widen_factor'] == scale
    model.load_state_dict(checkpoint['state_dict'], strict=True)


@needs_weights
@pytest.mark.parametrize('filename,size', [('dicenet_s_1.0_pascal_256x256.pth', (256, 256)),
                                           ('dicenet_s_1.5_city_512x256.pth', (256, 512))])
def test_converted_model_matches_reference_forward(filename, size):
    src = osp.join(WEIGHTS, filename)
    if not osp.isfile(src):
        pytest.skip(f'{filename} not in {WEIGHTS}')
    ref_sd = load_edgenets_state_dict(src)
    image = photo_batch(size)
    with torch.no_grad():
        expected = ref_segmentation_forward(ref_sd, image)
        model = build_segmentor(config_for(filename))
        model.load_state_dict(convert_edgenets_state_dict(ref_sd).state_dict, strict=True)
        model.eval()
        meta = [dict(img_shape=size, pad_shape=size, ori_shape=size)]
        logits = model.encode_decode(image, meta)
    num_classes = 21 if '_pascal_' in filename else 20
    assert logits.shape == expected.shape == (1, num_classes, *size)
    diff = (logits - expected).abs().max().item()
    assert diff < 1e-3, f'max |logit diff| {diff}'
    if num_classes == 21:  # the photo is a cat: the reference labels most pixels 'cat' (8)
        assert (expected.argmax(1) == 8).float().mean() > 0.5


def test_unknown_and_missing_keys_are_reported():
    from mmdice.models.backbones.dicenet import DiCENet
    from mmdice.models.heads.dice_seg_head import DiCESegHead
    torch.manual_seed(0)
    ours = {f'backbone.{k}': v for k, v in DiCENet(
        widen_factor=0.2, num_stages=2, out_indices=(0, 1, 2, 3)).state_dict().items()}
    head = DiCESegHead(in_channels=[16, 16, 32, 64], channels=10, num_classes=21)
    ours.update({f'decode_head.{k}': v for k, v in head.state_dict().items()})
    ref = synthesize_reference(ours)
    converted = convert_edgenets_state_dict(ref).state_dict
    assert set(converted) == set(ours)
    for key, value in ours.items():
        torch.testing.assert_close(converted[key], value, rtol=0, atol=0)

    with pytest.raises(ValueError, match=r'unknown key.*base_net\.level3\.0\.extra\.weight'):
        convert_edgenets_state_dict({**ref, 'base_net.level3.0.extra.weight': torch.zeros(1)})
    broken = dict(ref)
    del broken['proj_enc_64x64.wt_layer.1.weight']
    missing = r'missing 1: decode_head\.skip_projs\.1\.gate\.conv\.weight'
    with pytest.raises(ValueError, match=missing):
        convert_edgenets_state_dict(broken)
    with pytest.raises(ValueError, match='cannot tell the task'):
        convert_edgenets_state_dict({'base_net.level1.cbr.0.weight': torch.zeros(16, 3, 3, 3)})


def synthesize_reference(ours):
    """Our state dict -> reference key layout (inverse mapping written out here)."""
    import re
    ref = {}
    pool_names = ['16x16', '32x32', '64x64', '128x128']
    skip_names = ['32x32', '64x64', '128x128']
    cbr = {'conv': '0', 'bn': '1', 'activate': '2'}
    for key, value in ours.items():
        k = key
        k = re.sub(r'^backbone\.stem\.(conv|bn|activate)\.',
                   lambda m: f'base_net.level1.cbr.{cbr[m.group(1)]}.', k)
        k = re.sub(r'^backbone\.layers\.(\d)\.(\d+)\.',
                   lambda m: f'base_net.level{int(m.group(1)) + 3}.{m.group(2)}.', k)
        k = re.sub(r'\.left\.(\d)\.(conv|bn|activate)\.',
                   lambda m: f'.left_layer.{m.group(1)}.cbr.{cbr[m.group(2)]}.', k)
        k = re.sub(r'\.right\.2\.(conv|bn|activate)\.',
                   lambda m: f'.right_layer.2.cbr.{cbr[m.group(1)]}.', k)
        k = re.sub(r'\.branch\.0\.(conv|bn|activate)\.',
                   lambda m: f'.layer_right.0.cbr.{cbr[m.group(1)]}.', k)
        k = k.replace('.right.1.', '.right_layer.1.').replace('.branch.1.', '.layer_right.1.')
        k = k.replace('dim_conv.weight_depth', 'conv_channel.weight')
        k = k.replace('dim_conv.weight_height', 'conv_height.weight')
        k = k.replace('dim_conv.weight_width', 'conv_width.weight')
        k = k.replace('dim_norm.', 'br_act.br.0.').replace('dim_act.', 'br_act.br.1.')
        k = re.sub(r'dim_fuse\.(local_fusion|spatial_fusion)\.(conv|bn|activate)\.',
                   lambda m: {'local_fusion': 'weight_avg_layer',
                              'spatial_fusion': 'proj_layer'}[m.group(1)]
                   + f'.cbr.{cbr[m.group(2)]}.', k)
        k = k.replace('dim_fuse.gate.reduce.conv.', 'linear_comb_layer.1.')
        k = k.replace('dim_fuse.gate.expand.conv.', 'linear_comb_layer.3.')
        k = re.sub(r'^decode_head\.pyramid_pools\.(\d)\.',
                   lambda m: f'eff_pool_{pool_names[int(m.group(1))]}.', k)
        k = re.sub(r'\.projection\.(conv|bn|activate)\.',
                   lambda m: f'.projection_layer.cbr.{cbr[m.group(1)]}.', k)
        k = k.replace('.scale_convs.', '.stages.')
        k = k.replace('.merge_norm.', '.merge_layer.0.br.0.')
        k = k.replace('.merge_act.', '.merge_layer.0.br.1.')
        k = re.sub(r'\.merge_conv\.(conv|bn|activate)\.',
                   lambda m: f'.merge_layer.2.cbr.{cbr[m.group(1)]}.', k)
        k = k.replace('.out_proj.conv.', '.merge_layer.3.')
        k = k.replace('.out_proj.bn.', '.br.br.0.').replace('.out_proj.activate.', '.br.br.1.')
        k = k.replace('decode_head.conv_seg.', 'eff_pool_128x128.merge_layer.3.')
        k = re.sub(r'^decode_head\.skip_projs\.(\d)\.',
                   lambda m: f'proj_enc_{skip_names[int(m.group(1))]}.', k)
        k = k.replace('.gate.conv.', '.wt_layer.1.')
        k = re.sub(r'\.expansion\.(conv|bn|activate)\.',
                   lambda m: f'.expansion_layer.cbr.{cbr[m.group(1)]}.', k)
        k = re.sub(r'^decode_head\.merge_norms\.(\d)\.',
                   lambda m: f'bu_br_{skip_names[int(m.group(1))]}.0.', k)
        k = re.sub(r'^decode_head\.merge_acts\.(\d)\.',
                   lambda m: f'bu_br_{skip_names[int(m.group(1))]}.1.', k)
        k = k.replace('head.grouped_fc.', 'classifier.0.').replace('head.fc.', 'classifier.2.')
        if k == 'classifier.2.weight':
            value = value[:, :, None, None]
        if ('br_act.br.' in k) and value.dim() == 1:
            value = value.view(-1, 3).t().reshape(-1)  # ours 3c+g -> ref g*C+c
        ref[k] = value.clone()
    return ref


@pytest.mark.parametrize('prefix', ['base_net.', '', 'module.base_net.'])
def test_classification_layout(prefix):
    pytest.importorskip('mmpretrain')
    from mmdice.models.backbones.dicenet import DiCENet
    from mmdice.models.heads.dice_cls_head import DiCEClsHead
    torch.manual_seed(0)
    ours = {f'backbone.{k}': v for k, v in DiCENet(widen_factor=0.2).state_dict().items()}
    head = DiCEClsHead(num_classes=1000, in_channels=128, mid_channels=1024)
    ours.update({f'head.{k}': v for k, v in head.state_dict().items()})
    ref = {}
    for key, value in synthesize_reference(ours).items():
        if key.startswith('base_net.'):
            key = prefix + key[len('base_net.'):]
        ref[key] = value
    assert any(k.startswith(prefix + 'level5.') for k in ref)
    assert tuple(ref['classifier.2.weight'].shape) == (1000, 1024, 1, 1)
    result = convert_edgenets_state_dict(ref)
    assert (result.task, result.widen_factor, result.num_classes) == ('classification', 0.2, 1000)
    assert set(result.state_dict) == set(ours)
    for key, value in ours.items():
        torch.testing.assert_close(result.state_dict[key], value, rtol=0, atol=0)


@needs_weights
def test_cli_converts_and_reports(tmp_path):
    src = osp.join(WEIGHTS, 'dicenet_s_0.5_pascal_256x256.pth')
    if not osp.isfile(src):
        pytest.skip('dicenet_s_0.5_pascal_256x256.pth missing')
    dst = tmp_path / 'out' / 'converted.pth'
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    script = osp.join(REPO, 'tools', 'model_converters', 'edgenets2mmdice.py')
    proc = subprocess.run([sys.executable, script, src, str(dst)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert 'widen_factor (s): 0.5' in proc.stdout
    assert 'num_classes: 21' in proc.stdout
    assert dst.is_file()

    bad = tmp_path / 'bad.pth'
    sd = load_edgenets_state_dict(src)
    sd['eff_pool_16x16.unexpected.weight'] = torch.zeros(1)
    torch.save(sd, bad)
    proc = subprocess.run([sys.executable, script, str(bad), str(tmp_path / 'x.pth')],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1
    assert 'eff_pool_16x16.unexpected.weight' in proc.stderr
