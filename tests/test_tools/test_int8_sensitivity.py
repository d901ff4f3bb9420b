"""tools/analysis_tools/int8_sensitivity.py and mmdice.apis.int8_sensitivity on
the small shapes classifier (random weights, generated images): the per-layer
and per-quantizer diagnosis, the quantizer bypass it ranks with, the numpy
FakeQuantize it measures with, and its bad-input errors."""
import importlib.util
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip('openvino')
pytest.importorskip('nncf')
pytest.importorskip('onnxscript')

from mmdice.ops import EXT_AVAILABLE  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLS_CONFIG = osp.join(REPO, 'configs', 'dicenet', 'dicenet-s0.5_1xb32_shapes-64px.py')
NUM_IMAGES = 8

pytestmark = pytest.mark.skipif(not EXT_AVAILABLE, reason='mmdice._ext is not built')


def load_tool():
    path = osp.join(REPO, 'tools', 'analysis_tools', 'int8_sensitivity.py')
    spec = importlib.util.spec_from_file_location('int8_sensitivity_tool', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    """A random-weight checkpoint and a folder of generated shapes images."""
    from mmdice.apis import build_model_from_config
    from mmdice.testing.shapes import generate_shapes_classification
    root = tmp_path_factory.mktemp('int8_sensitivity')
    generate_shapes_classification(str(root / 'shapes'), num_images=NUM_IMAGES, image_size=64,
                                   val_fraction=0.25)
    calib = root / 'calib'
    calib.mkdir()
    for folder, _, files in os.walk(root / 'shapes'):
        for name in files:
            shutil.copy(osp.join(folder, name), calib / name)
    torch.manual_seed(0)
    model = build_model_from_config(CLS_CONFIG)
    checkpoint = root / 'cls.pth'
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    return root, str(checkpoint), str(calib)


@pytest.fixture(scope='module')
def models(inputs):
    """(fp32 OpenVINO model with the rewrites int8 quantization makes first: PReLUs
    fused, equalized; int8 model; input arrays)."""
    from mmdice.apis.quantize import (list_calibration_images, prepare_quantization,
                                      quantize_model, read_onnx, rewrite_float_model)
    from mmdice.utils import load_config
    root, checkpoint, calib = inputs
    onnx_path = str(root / 'model.onnx')
    _, tensors = prepare_quantization(load_config(CLS_CONFIG), checkpoint,
                                      list_calibration_images(calib), onnx_path, progress=False)
    arrays = [x.numpy() for x in tensors]
    fp32 = read_onnx(onnx_path)
    rewrite_float_model(fp32, arrays)
    int8, _ = quantize_model(read_onnx(onnx_path), tensors)
    return fp32, int8, arrays


def test_fuse_prelu_is_exact(inputs, models):
    import openvino as ov
    from mmdice.apis.quantize import read_onnx
    root, _, _ = inputs
    fp32, _, arrays = models
    plain = read_onnx(str(root / 'model.onnx'))
    kinds = [op.get_type_name() for op in fp32.get_ops()]
    assert 'PRelu' in kinds and 'Minimum' not in kinds and 'Maximum' not in kinds
    core = ov.Core()
    fused = core.compile_model(fp32, 'CPU', {'INFERENCE_PRECISION_HINT': 'f32'})
    unfused = core.compile_model(plain, 'CPU', {'INFERENCE_PRECISION_HINT': 'f32'})
    for x in arrays:
        np.testing.assert_allclose(fused(x)[0], unfused(x)[0], rtol=1e-5, atol=1e-5)


def test_fake_quantize_matches_openvino(models):
    """The numpy FakeQuantize the quantizer SQNR is computed with gives
    OpenVINO's result on an activation quantizer's ranges (values inside,
    between the levels and outside the range)."""
    import openvino as ov
    from openvino import opset13 as ops

    from mmdice.apis.int8_sensitivity import fake_quantize, find_quantizers
    _, int8, _ = models
    nodes = {op.get_friendly_name(): op for op in int8.get_ops()}
    activation = next(q for q in find_quantizers(int8) if not q.weight)
    node = nodes[activation.name]
    data = np.random.default_rng(0).uniform(1.5 * activation.low - 1, 1.5 * activation.high + 1,
                                            (2, 3, 5, 7)).astype(np.float32)
    parameter = ops.parameter(list(data.shape), np.float32)
    ranges = [ops.constant(node.input_value(i).get_node().get_data()) for i in range(1, 5)]
    model = ov.Model([ops.fake_quantize(parameter, *ranges, node.get_levels())], [parameter])
    compiled = ov.Core().compile_model(model, 'CPU', {'INFERENCE_PRECISION_HINT': 'f32'})
    expected = compiled(data)[0]
    np.testing.assert_allclose(fake_quantize(data, node), expected, rtol=0, atol=1e-5)
    assert not np.allclose(expected, data)  # the quantizer rounds and clips


def test_bypassing_every_quantizer_restores_fp32(models):
    import openvino as ov

    from mmdice.apis.int8_sensitivity import (argmax_agreement, bypass_quantizers,
                                              find_quantizers)
    fp32, int8, arrays = models
    names = [q.name for q in find_quantizers(int8)]
    assert names
    restored = bypass_quantizers(int8, names, fp32)
    assert find_quantizers(restored) == []
    assert len(find_quantizers(int8)) == len(names)  # the original is untouched
    assert {q.weight for q in find_quantizers(int8)} == {True, False}
    core = ov.Core()
    config = {'INFERENCE_PRECISION_HINT': 'f32'}
    want = [core.compile_model(fp32, 'CPU', config)(x)[0] for x in arrays]
    got = [core.compile_model(restored, 'CPU', config)(x)[0] for x in arrays]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert argmax_agreement(got, want) == 1.0


def test_tool_end_to_end(inputs, tmp_path, capsys):
    _, checkpoint, calib = inputs
    report = tmp_path / 'sens.json'
    assert load_tool().main([CLS_CONFIG, checkpoint, '--calib-dir', calib, '--top', '3',
                             '--json', str(report), '--ignore-types']) == 0  # every op type
    out = capsys.readouterr().out
    assert 'int8 vs fp32 argmax agreement' in out and 'lowest-SQNR quantizers' in out
    analysis = json.loads(report.read_text())
    assert 0 <= analysis['agreement'] <= 1
    layers = analysis['layers']
    assert {'Convolution', 'MatMul'} <= {row['type'] for row in layers}
    finite = [row['sqnr_db'] for row in layers if np.isfinite(row['sqnr_db'])]
    assert finite and all(-20 < value < 100 for value in finite)
    quantizers = analysis['quantizers']
    assert any(q['weight'] for q in quantizers) and any(not q['weight'] for q in quantizers)
    for q in quantizers:
        assert 'sqnr_db' in q['stats']
        if not q['weight'] and 'range' in q['stats']:
            stats = q['stats']
            assert 0 <= stats['narrow_channels'] <= 1 and 0 <= stats['clipped'] <= 1
            assert stats['channel_min'] <= stats['channel_median']
    ranked = [q for q in quantizers if 'agreement_alone' in q['stats']]
    assert len(ranked) == 3
    lowest = sorted(q['stats']['sqnr_db'] for q in quantizers)[:3]
    assert sorted(q['stats']['sqnr_db'] for q in ranked) == lowest
    for q in ranked:
        assert 0 <= q['stats']['agreement_alone'] <= 1
        assert 0 <= q['stats']['agreement_without'] <= 1


def run_tool_error(argv, capsys):
    status = load_tool().main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert err[-1].startswith('error: ')
    return err[-1]


def test_missing_evaluation_folder(inputs, tmp_path, capsys):
    _, checkpoint, calib = inputs
    line = run_tool_error([CLS_CONFIG, checkpoint, '--calib-dir', calib, '--eval-dir',
                           str(tmp_path / 'nope')], capsys)
    assert 'does not exist' in line and 'nope' in line


def test_bad_top(inputs, capsys):
    _, checkpoint, calib = inputs
    line = run_tool_error([CLS_CONFIG, checkpoint, '--calib-dir', calib, '--top', '-1'], capsys)
    assert '--top' in line


def conv_prelu_conv_model(channels=6, seed=0):
    """An OpenVINO model conv 3x3 -> bias -> PReLU -> conv 1x1 -> bias, with
    uneven channel scales (as BatchNorm folding leaves them) and channel 2 of
    the first conv constant (zero weights: a dead BatchNorm channel)."""
    import openvino as ov
    from openvino import opset13 as ops
    rng = np.random.default_rng(seed)
    w1 = rng.normal(size=(channels, 3, 3, 3)) * np.logspace(-2, 2, channels)[:, None, None, None]
    w1[2] = 0
    b1 = rng.normal(size=(1, channels, 1, 1))
    slope = rng.uniform(0.05, 2.0, size=(1, channels, 1, 1))
    w2 = rng.normal(size=(4, channels, 1, 1))
    b2 = rng.normal(size=(1, 4, 1, 1))
    x = ops.parameter([-1, 3, 16, 16], np.float32, name='input')
    conv1 = ops.convolution(x, ops.constant(w1.astype(np.float32)), [1, 1], [1, 1], [1, 1],
                            [1, 1])
    act = ops.prelu(ops.add(conv1, ops.constant(b1.astype(np.float32))),
                    ops.constant(slope.astype(np.float32)))
    conv2 = ops.convolution(act, ops.constant(w2.astype(np.float32)), [1, 1], [0, 0], [0, 0],
                            [1, 1])
    out = ops.add(conv2, ops.constant(b2.astype(np.float32)))
    return ov.Model([out], [x])


def run_model(model, arrays):
    """Outputs 0 of the OpenVINO ``model`` (f32) on each array."""
    import openvino as ov
    compiled = ov.Core().compile_model(model, 'CPU', {'INFERENCE_PRECISION_HINT': 'f32'})
    return [compiled(x)[0] for x in arrays]


@pytest.mark.parametrize('by', ['weights', 'activations'])
def test_equalization_through_prelu_is_exact(by):
    from mmdice.apis.int8_rewrites import channel_ranges, equalize_prelu_pairs, prelu_chains
    model = conv_prelu_conv_model()
    arrays = [np.random.default_rng(i).normal(size=(2, 3, 16, 16)).astype(np.float32)
              for i in range(3)]
    before = run_model(model, arrays)
    chains = prelu_chains(model)
    assert len(chains) == 1
    prelu = chains[0].prelu.get_friendly_name()
    ranges = channel_ranges(model, [prelu], arrays)[prelu]
    spread = ranges.max() / np.median(ranges)
    assert equalize_prelu_pairs(
        model, {prelu: ranges} if by == 'activations' else None) == 1
    for got, want in zip(run_model(model, arrays), before):
        assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()  # float32 rounding
    after = channel_ranges(model, [prelu], arrays)[prelu]
    live = after > 0
    assert after[live].max() / np.median(after[live]) < spread  # the ranges are evener


def test_fold_constant_channels_is_exact():
    from mmdice.apis.int8_rewrites import channel_ranges, fold_constant_channels, prelu_chains
    model = conv_prelu_conv_model()
    arrays = [np.random.default_rng(i).normal(size=(1, 3, 16, 16)).astype(np.float32)
              for i in range(3)]
    before = run_model(model, arrays)
    prelu = prelu_chains(model)[0].prelu.get_friendly_name()
    assert channel_ranges(model, [prelu], arrays)[prelu][2] != 0
    assert fold_constant_channels(model, arrays) == 1
    assert channel_ranges(model, [prelu], arrays)[prelu][2] == 0  # out of the range
    other = [np.random.default_rng(10).normal(size=(2, 3, 16, 16)).astype(np.float32)]
    for got, want in zip(run_model(model, arrays + other), before + run_model(
            conv_prelu_conv_model(), other)):
        assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_extra_outputs_in_order_with_repeats_and_results(models):
    """Requested tensors come back in the asked order, also when one is asked
    twice or is a model output already (add_outputs does not add those)."""
    from mmdice.apis.int8_sensitivity import _run_with_outputs
    fp32, _, arrays = models
    result_source = fp32.outputs[0].get_node().input_value(0)
    last = (result_source.get_node().get_friendly_name(), result_source.get_index())
    convs = [op.get_friendly_name() for op in fp32.get_ordered_ops()
             if op.get_type_name() == 'Convolution'][:2]
    wanted = [(convs[1], 0), last, (convs[0], 0), (convs[1], 0)]
    got = next(_run_with_outputs(fp32, wanted, arrays[:1]))
    assert [t.shape for t in got] == [got[0].shape, (1, ) + got[1].shape[1:], got[2].shape,
                                      got[0].shape]
    np.testing.assert_array_equal(got[0], got[3])
    np.testing.assert_allclose(got[1], run_model(fp32, arrays[:1])[0], rtol=1e-6, atol=1e-6)
    assert got[2].shape[1] != got[1].shape[1]  # a feature map, not the logits
