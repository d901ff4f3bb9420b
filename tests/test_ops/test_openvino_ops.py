"""The mmdice OpenVINO extension (mmdice.ops.openvino): build and load, the
DiCEFuse node against the PyTorch op, and its errors."""
import os
import sys

import numpy as np
import pytest
import torch

ov = pytest.importorskip('openvino')
onnx = pytest.importorskip('onnx')
pytest.importorskip('onnxscript')

from mmdice.apis import export_onnx, export_openvino  # noqa: E402
from mmdice.apis.openvino_export import rewrite_onnx_file  # noqa: E402
from mmdice.ops import EXT_AVAILABLE, DimConvFuse2d  # noqa: E402
from mmdice.ops.openvino import (LIBRARY_NAME, OpenVINOExtensionError,  # noqa: E402
                                 build_openvino_extension, extension_sources,
                                 load_openvino_extension)

pytestmark = pytest.mark.skipif(not EXT_AVAILABLE, reason='mmdice._ext is not built')


@pytest.fixture(scope='module')
def library():
    return build_openvino_extension()


def random_fuse(channels, size, kernel_size=3, dilation=1, seed=0):
    torch.manual_seed(seed)
    fused = DimConvFuse2d(channels, size, kernel_size, dilation).eval()
    with torch.no_grad():
        for parameter in fused.parameters():
            parameter.uniform_(-1, 1)
    return fused


def compile_onnx(path, library):
    core = ov.Core()
    load_openvino_extension(core, library)
    model = core.read_model(path)
    return model, core.compile_model(model, 'CPU', {'INFERENCE_PRECISION_HINT': 'f32'})


def test_build_into_a_fresh_cache_and_load(tmp_path):
    """A first build compiles; asking again reuses the library."""
    library = build_openvino_extension(str(tmp_path))
    assert os.path.basename(library) == LIBRARY_NAME and library.startswith(str(tmp_path))
    stamp = os.stat(library).st_mtime_ns
    assert build_openvino_extension(str(tmp_path)) == library
    assert os.stat(library).st_mtime_ns == stamp
    core = ov.Core()
    assert load_openvino_extension(core, library) == library
    # The library is built from the shared kernel code too.
    names = [os.path.basename(path) for path in extension_sources()]
    assert {'dice_fuse_op.cpp', 'dice_fuse_cpu_planes.h', 'dim_conv_cpu_taps.h'} <= set(names)


@pytest.mark.parametrize('layout', ['NCHW', 'NHWC'])
@pytest.mark.parametrize('batch, channels, height, width, kernel_size, dilation', [
    (2, 7, 5, 9, 3, (1, 2, 1)),  # odd channel count, H != W
    (1, 16, 14, 14, 3, 1),
    (3, 33, 7, 7, 3, (2, 1, 3)),
    (2, 13, 9, 6, 3, 1),  # column blocks with a remainder, channels not a multiple of 8
    (2, 5, 11, 6, 5, 1),  # 5x5 kernels
    (1, 1, 3, 4, 3, 2),  # one channel, taps reaching past the plane
])
def test_dice_fuse_node_matches_the_pytorch_op(tmp_path, library, batch, channels, height,
                                                width, kernel_size, dilation, layout):
    """The node runs the same kernel as torch.ops.mmdice.dice_fuse, in either
    layout (NHWC: the export rewritten for the CPU plugin), at the export's
    batch and another (the batch axis is dynamic)."""
    fused = random_fuse(channels, (height, width), kernel_size, dilation)
    x = torch.randn(batch, channels, height, width)
    path = str(tmp_path / 'fuse.onnx')
    export_onnx(fused, x, path, mmdice_domain=True)
    if layout == 'NHWC':
        rewrite_onnx_file(path)
    nodes = [(node.domain, node.op_type) for node in onnx.load(path).graph.node]
    assert nodes == ([('mmdice', 'DiCEFuse')] if layout == 'NCHW' else
                     [('', 'Transpose'), ('mmdice', 'DiCEFuse'), ('', 'Transpose')])
    model, compiled = compile_onnx(path, library)
    assert 'DiCEFuse' in [op.get_type_name() for op in model.get_ops()]
    for inputs in (x, torch.randn(batch + 2, channels, height, width)):
        with torch.no_grad():
            expected = fused(inputs).numpy()
        actual = compiled(inputs.numpy())[0]
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def pool_into_dice_fuse(path):
    """The planar export at ``path`` with its AveragePool moved into the
    DiCEFuse node (``input_pool=1``), as the NHWC rewrite does for NHWC."""
    model = onnx.load(path)
    pool = next(node for node in model.graph.node if node.op_type == 'AveragePool')
    dice_fuse = next(node for node in model.graph.node if node.op_type == 'DiCEFuse')
    dice_fuse.input[0] = pool.input[0]
    dice_fuse.attribute.append(onnx.helper.make_attribute('input_pool', 1))
    model.graph.node.remove(pool)
    onnx.save(model, path)


@pytest.mark.parametrize('layout', ['NCHW', 'NHWC'])
@pytest.mark.parametrize('batch, channels, height, width, kernel_size', [
    (2, 13, 9, 7, 3),  # odd sizes: the last windows reach into the padding
    (1, 16, 14, 14, 3),
    (3, 5, 10, 12, 5),
    (1, 1, 2, 3, 3),
])
def test_dice_fuse_node_pools_its_input(tmp_path, library, batch, channels, height, width,
                                        kernel_size, layout):
    """input_pool=1: the strided unit's 3x3 stride-2 average pooling (padding
    counted) read by the node, against nn.AvgPool2d then the PyTorch op."""
    pooled = ((height - 1) // 2 + 1, (width - 1) // 2 + 1)
    model = torch.nn.Sequential(torch.nn.AvgPool2d(3, stride=2, padding=1),
                                random_fuse(channels, pooled, kernel_size)).eval()
    x = torch.randn(batch, channels, height, width)
    path = str(tmp_path / 'pooled.onnx')
    export_onnx(model, x, path, mmdice_domain=True)
    if layout == 'NHWC':
        rewrite_onnx_file(path)
    else:
        pool_into_dice_fuse(path)
    nodes = [node for node in onnx.load(path).graph.node]
    assert 'AveragePool' not in [node.op_type for node in nodes]
    dice_fuse = next(node for node in nodes if node.op_type == 'DiCEFuse')
    assert onnx.helper.get_attribute_value(
        next(a for a in dice_fuse.attribute if a.name == 'input_pool')) == 1
    _, compiled = compile_onnx(path, library)
    for inputs in (x, torch.randn(batch + 1, channels, height, width)):
        with torch.no_grad():
            expected = model(inputs).numpy()
        actual = compiled(inputs.numpy())[0]
        assert actual.shape == expected.shape
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize('build, size, dilation', [
    ((6, 6), (14, 9), (1, 2, 1)),  # height band 7 (resampling passes in PyTorch), width 5
    ((8, 8), (5, 11), 1),  # shrinking and growing
    ((7, 9), (8, 10), 2),
])
def test_other_sizes_than_the_build_size_run_banded_kernels(tmp_path, library, build, size,
                                                             dilation):
    """The plain ONNX export of the op at another size holds the standard-operator
    resampling path; the OpenVINO export one DiCEFuse node with banded kernels."""
    fused = random_fuse(9, build, dilation=dilation)
    x = torch.randn(2, 9, *size)
    path = str(tmp_path / 'scaled.onnx')
    export_onnx(fused, x, path, mmdice_domain=True)
    assert 'DiCEFuse' not in [node.op_type for node in onnx.load(path).graph.node]
    xml = str(tmp_path / 'scaled.xml')
    export_openvino(fused, x, xml)
    model, compiled = compile_onnx(xml, library)
    assert [op.get_type_name() for op in model.get_ops()].count('DiCEFuse') == 1
    assert 'forward' not in vars(fused)  # the export's banded forward is gone
    with torch.no_grad():
        expected = fused(x).numpy()
    np.testing.assert_allclose(compiled(x.numpy())[0], expected, rtol=1e-5,
                               atol=1e-5 * np.abs(expected).max())


def bfloat16_tensor(tensor):
    """An OpenVINO bf16 tensor holding ``tensor`` rounded to bfloat16."""
    bits = tensor.detach().contiguous().bfloat16().view(torch.int16).numpy().view(np.uint16)
    result = ov.Tensor(ov.Type.bf16, ov.Shape(list(tensor.shape)))
    np.copyto(result.data.view(np.uint16).reshape(bits.shape), bits)
    return result


def test_node_computes_bfloat16(tmp_path, library):
    """The node takes and returns bf16 (f32 accumulation): as the PyTorch op in
    bfloat16, within bfloat16's rounding. (A CPU without bf16 runs a bf16 IR's
    nodes in f32, so the node is evaluated directly.)"""
    fused = random_fuse(13, (9, 6))
    x = torch.randn(2, 13, 9, 6)
    path = str(tmp_path / 'fuse.onnx')
    export_onnx(fused, x, path, mmdice_domain=True)
    core = ov.Core()
    load_openvino_extension(core, library)
    model = core.read_model(path)
    node = next(op for op in model.get_ops() if op.get_type_name() == 'DiCEFuse')
    inputs = [bfloat16_tensor(value) for value in (x, *fused.dim_weights(), *fused.coefficients())]
    output = ov.Tensor(ov.Type.bf16, ov.Shape(list(x.shape)))
    assert node.evaluate([output], inputs)
    bits = torch.from_numpy(output.data.view(np.uint16).astype(np.int32)).to(torch.int16)
    actual = bits.view(torch.bfloat16).float().reshape(x.shape).clone()
    # The node's code lives in the extension library that the core holds: free it first.
    del node, model, output
    with torch.no_grad():
        expected = fused.bfloat16()(x.bfloat16()).float()
    torch.testing.assert_close(actual, expected, rtol=2**-7, atol=2**-7 * expected.abs().max())


def test_openvino_export_keeps_prelu(tmp_path, library):
    """PReLU reaches OpenVINO as PRelu (which its CPU plugin can fuse into a
    convolution), not as the Max(x, a * x) of the onnxruntime export."""
    model = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 1), torch.nn.PReLU(4),
                                random_fuse(4, (6, 6))).eval()
    xml = str(tmp_path / 'model.xml')
    export_openvino(model, torch.randn(1, 4, 6, 6), xml, library=library)
    core = ov.Core()
    load_openvino_extension(core, library)
    types = [op.get_type_name() for op in core.read_model(xml).get_ops()]
    assert 'PRelu' in types and 'Maximum' not in types and 'DiCEFuse' in types


def test_node_rejects_weights_of_another_size(tmp_path, library):
    fused = random_fuse(4, (5, 5))
    path = str(tmp_path / 'fuse.onnx')
    export_onnx(fused, torch.randn(1, 4, 5, 5), path, mmdice_domain=True)
    model = onnx.load(path)
    weight_height = next(init for init in model.graph.initializer if 'weight_height' in init.name)
    weight_height.CopyFrom(onnx.numpy_helper.from_array(
        np.zeros((6, 1, 3, 3), np.float32), weight_height.name))
    onnx.save(model, path)
    with pytest.raises(Exception, match='DiCEFuse.*weight_height'):
        compile_onnx(path, library)[1](np.zeros((1, 4, 5, 5), np.float32))


def test_missing_library_is_named(tmp_path):
    missing = str(tmp_path / 'libmissing.so')
    with pytest.raises(OpenVINOExtensionError, match='libmissing.so.*build_openvino_extension'):
        load_openvino_extension(ov.Core(), missing)


def test_missing_compiler_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv('CXX', 'no-such-compiler')
    with pytest.raises(OpenVINOExtensionError, match="no C\\+\\+ compiler 'no-such-compiler'"):
        build_openvino_extension(str(tmp_path))


def test_missing_openvino_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, 'openvino', None)
    with pytest.raises(OpenVINOExtensionError, match='pip install openvino'):
        build_openvino_extension()


def shuffle_gated_concat_model(path, shape, outputs, with_gate, branch_channels=None):
    """An ONNX graph of one mmdice.ShuffleGatedConcat node on (N, H, W, C) inputs
    (the branch (N, H, W, branch_channels) if given)."""
    from mmdice.ops.onnx import MMDICE_DOMAIN, MMDICE_DOMAIN_VERSION, register_mmdice_schemas
    register_mmdice_schemas()
    batch, channels = shape[0], shape[3]
    branch_channels = branch_channels or channels
    half = (channels + branch_channels) // 2
    names = ['left', 'branch'] + (['gate'] if with_gate else [])
    shapes = [shape, [*shape[:3], branch_channels]] + (
        [[batch, branch_channels, 1, 1]] if with_gate else [])
    out_shape = [*shape[:3], half if outputs == 2 else 2 * half]
    node = onnx.helper.make_node('ShuffleGatedConcat', names,
                                 [f'y{i}' for i in range(outputs)], domain=MMDICE_DOMAIN,
                                 num_outputs=outputs)
    graph = onnx.helper.make_graph(
        [node], 'shuffle',
        [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, s)
         for n, s in zip(names, shapes)],
        [onnx.helper.make_tensor_value_info(f'y{i}', onnx.TensorProto.FLOAT, out_shape)
         for i in range(outputs)])
    model = onnx.helper.make_model(graph, opset_imports=[
        onnx.helper.make_opsetid('', 18),
        onnx.helper.make_opsetid(MMDICE_DOMAIN, MMDICE_DOMAIN_VERSION)])
    onnx.save(model, path)


def shuffle_gated_concat_reference(left, branch, gate):
    """channel_shuffle(cat(left, branch * gate), 2) of channels-last (N, H, W, C) arrays."""
    right = branch if gate is None else branch * gate.reshape(gate.shape[0], 1, 1, -1)
    joined = np.concatenate([left, right], axis=-1)
    half = joined.shape[-1] // 2
    return np.stack([joined[..., :half], joined[..., half:]], axis=-1).reshape(
        *left.shape[:3], -1)


@pytest.mark.parametrize('outputs', [1, 2])
@pytest.mark.parametrize('with_gate', [True, False])
@pytest.mark.parametrize('shape', [(2, 3, 5, 7), (1, 4, 4, 16), (3, 2, 3, 1)])
def test_shuffle_gated_concat_node(tmp_path, library, shape, with_gate, outputs):
    """The block-end node against NumPy: odd channel counts (a split that cuts a
    channel pair), one channel, with and without the gate, one output or the
    two halves the next block splits."""
    rng = np.random.default_rng(0)
    left, branch = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
    gate = rng.random((shape[0], shape[3], 1, 1)).astype(np.float32) if with_gate else None
    path = str(tmp_path / 'shuffle.onnx')
    shuffle_gated_concat_model(path, list(shape), outputs, with_gate)
    _, compiled = compile_onnx(path, library)
    inputs = [left, branch] + ([gate] if with_gate else [])
    results = compiled(inputs)
    actual = [results[output] for output in compiled.outputs]
    expected = shuffle_gated_concat_reference(left, branch, gate)
    if outputs == 2:
        expected = [expected[..., :shape[3]], expected[..., shape[3]:]]
    else:
        expected = [expected]
    for got, want in zip(actual, expected):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('outputs', [1, 2])
@pytest.mark.parametrize('left_channels, branch_channels', [(3, 7), (8, 2), (5, 1), (1, 5)])
def test_shuffle_gated_concat_node_with_unequal_parts(tmp_path, library, left_channels,
                                                      branch_channels, outputs):
    """A block that widens its input: left and branch of different widths (L + R
    even), the gate of the branch's, against NumPy; halves cut at odd channels."""
    rng = np.random.default_rng(1)
    shape = (2, 3, 4, left_channels)
    left = rng.standard_normal(shape).astype(np.float32)
    branch = rng.standard_normal((*shape[:3], branch_channels)).astype(np.float32)
    gate = rng.random((shape[0], branch_channels, 1, 1)).astype(np.float32)
    path = str(tmp_path / 'shuffle.onnx')
    shuffle_gated_concat_model(path, list(shape), outputs, True, branch_channels)
    _, compiled = compile_onnx(path, library)
    results = compiled([left, branch, gate])
    actual = np.concatenate([results[output] for output in compiled.outputs], axis=-1)
    np.testing.assert_allclose(actual, shuffle_gated_concat_reference(left, branch, gate),
                               rtol=1e-6, atol=1e-6)


def test_shuffle_gated_concat_node_rejects_an_odd_total(tmp_path, library):
    path = str(tmp_path / 'shuffle.onnx')
    shuffle_gated_concat_model(path, [1, 2, 2, 3], 1, False, branch_channels=4)
    core = ov.Core()
    load_openvino_extension(core, library)
    with pytest.raises(Exception, match='must add up to an even number'):
        core.read_model(path)


def test_shuffle_gated_concat_node_computes_bfloat16(tmp_path, library):
    """bf16 in and out, computed in f32: the f32 result rounded to bfloat16."""
    shape = (2, 3, 4, 5)
    path = str(tmp_path / 'shuffle.onnx')
    shuffle_gated_concat_model(path, list(shape), 2, True)
    core = ov.Core()
    load_openvino_extension(core, library)
    model = core.read_model(path)
    node = next(op for op in model.get_ops() if op.get_type_name() == 'ShuffleGatedConcat')
    torch.manual_seed(0)
    left, branch = torch.randn(shape), torch.randn(shape)
    gate = torch.rand(shape[0], shape[3], 1, 1)
    outputs = [ov.Tensor(ov.Type.bf16, ov.Shape(list(shape))) for _ in range(2)]
    assert node.evaluate(outputs, [bfloat16_tensor(t) for t in (left, branch, gate)])
    actual = [torch.from_numpy(out.data.view(np.uint16).astype(np.int32)).to(torch.int16)
              .view(torch.bfloat16).float().reshape(shape).clone() for out in outputs]
    del node, model, outputs
    rounded = [t.bfloat16().float().numpy() for t in (left, branch, gate)]
    expected = torch.from_numpy(shuffle_gated_concat_reference(*rounded)).bfloat16().float()
    torch.testing.assert_close(torch.cat(actual, dim=-1), expected, rtol=2**-7, atol=1e-6)


def test_shuffle_gated_concat_node_rejects_a_gate_of_another_size(tmp_path, library):
    path = str(tmp_path / 'shuffle.onnx')
    shuffle_gated_concat_model(path, [1, 2, 2, 4], 1, True)
    core = ov.Core()
    load_openvino_extension(core, library)
    model = core.read_model(path)
    node = next(op for op in model.get_ops() if op.get_type_name() == 'ShuffleGatedConcat')
    zeros = ov.Tensor(np.zeros((1, 2, 2, 4), np.float32))
    output = ov.Tensor(ov.Type.f32, ov.Shape([1, 2, 2, 8]))
    with pytest.raises(Exception, match='ShuffleGatedConcat: gate must hold N \\* R = 4'):
        node.evaluate([output], [zeros, zeros, ov.Tensor(np.zeros((1, 3, 1, 1), np.float32))])
    del node, model


@pytest.mark.parametrize('kernel_size, layout', [(3, 'NCHW'), (3, 'NHWC'), (7, 'NCHW')])
def test_dice_fuse_node_writes_the_spatial_mean(tmp_path, library, kernel_size, layout):
    """with_mean=1: a second output, the output's means over (H, W) as (N, C),
    from the row kernel (k = 3) and the plane kernel (k = 7, which runs NCHW only)."""
    fused = random_fuse(11, (9, 8), kernel_size)
    x = torch.randn(3, 11, 9, 8)
    path = str(tmp_path / 'fuse.onnx')
    export_onnx(fused, x, path, mmdice_domain=True)
    if layout == 'NHWC':
        rewrite_onnx_file(path)
    model = onnx.load(path)
    node = next(node for node in model.graph.node if node.op_type == 'DiCEFuse')
    node.attribute.append(onnx.helper.make_attribute('with_mean', 1))
    node.output.append('mean')
    model.graph.output.append(onnx.helper.make_tensor_value_info('mean', onnx.TensorProto.FLOAT,
                                                                 None))
    onnx.save(model, path)
    _, compiled = compile_onnx(path, library)
    results = compiled(x.numpy())
    with torch.no_grad():
        expected = fused(x)
    actual = results[compiled.outputs[-1]]
    assert actual.shape == (3, 11)
    np.testing.assert_allclose(actual, expected.mean((2, 3)).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results[compiled.outputs[0]], expected.numpy(), rtol=1e-5,
                               atol=1e-5 * expected.abs().max().item())
