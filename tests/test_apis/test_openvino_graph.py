"""The OpenVINO export's channels-last rewrite (mmdice.apis.openvino_graph):
exact against PyTorch, block ends as ShuffleGatedConcat nodes, and a runtime
graph whose PReLUs sit in the convolutions and whose layout conversions are gone."""
import numpy as np
import pytest
import torch

ov = pytest.importorskip('openvino')
pytest.importorskip('onnxscript')

from mmdice.apis import compile_openvino, export_openvino  # noqa: E402
from mmdice.models import DiCENet  # noqa: E402
from mmdice.models.layers import ShuffleDiCEBlock, StridedDiCE  # noqa: E402
from mmdice.ops import EXT_AVAILABLE  # noqa: E402
from mmdice.ops.openvino import build_openvino_extension, load_openvino_extension  # noqa: E402

pytestmark = pytest.mark.skipif(not EXT_AVAILABLE, reason='mmdice._ext is not built')

SIZE = 64


@pytest.fixture(scope='module')
def library():
    return build_openvino_extension()


@pytest.fixture(scope='module')
def model():
    """A small DiCENet in its deploy form (s=1.0: its first stage's first block
    widens 48 channels to 116, halves of unequal width); PReLU slopes as
    initialised (equal values, which the ONNX export stores once)."""
    torch.manual_seed(0)
    backbone = DiCENet(1.0, input_size=SIZE, out_indices=(3, 4))
    with torch.no_grad():
        for module in backbone.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.bias.uniform_(-0.2, 0.2)
    backbone.eval().switch_to_deploy()
    return backbone


@pytest.fixture(scope='module')
def exports(model, library, tmp_path_factory):
    folder = tmp_path_factory.mktemp('openvino_graph')
    example = torch.randn(1, 3, SIZE, SIZE)
    paths = {}
    for layout in ('NHWC', 'NCHW'):
        paths[layout] = str(folder / f'{layout}.xml')
        export_openvino(model, example, paths[layout], library=library, dice_layout=layout)
    return paths


@pytest.fixture(scope='module')
def core(library):
    """A Core with the extension (it must outlive the models read with it)."""
    core = ov.Core()
    load_openvino_extension(core, library)
    return core


def test_block_ends_become_shuffle_gated_concat_nodes(model, exports, core):
    ops = core.read_model(exports['NHWC']).get_ops()
    types = [op.get_type_name() for op in ops]
    blocks = sum(isinstance(module, ShuffleDiCEBlock) for module in model.modules())
    assert types.count('ShuffleGatedConcat') >= blocks > 0
    assert 'ShuffleChannels' not in types and 'VariadicSplit' not in types
    assert 'ReduceMean' not in types  # the gates' means come from the DiCEFuse nodes
    dice_fuse = [op.get_attributes() for op in ops if op.get_type_name() == 'DiCEFuse']
    assert {attributes['layout'] for attributes in dice_fuse} == {'NHWC'}
    # the strided units' average poolings are read by their DiCEFuse nodes
    strided = sum(isinstance(module, StridedDiCE) for module in model.modules())
    assert 'AvgPool' not in types
    assert sum(attributes['input_pool'] for attributes in dice_fuse) == strided > 0
    planar = [op.get_type_name() for op in core.read_model(exports['NCHW']).get_ops()]
    assert 'ShuffleGatedConcat' not in planar and 'DiCEFuse' in planar


@pytest.mark.parametrize('input_shape', [None, (3, 3, SIZE, SIZE)])
def test_rewritten_export_matches_pytorch(model, exports, library, input_shape):
    """Dynamic batch, and the static shape the plugin optimises fully."""
    x = torch.randn(3, 3, SIZE, SIZE)
    with torch.no_grad():
        expected = [output.numpy() for output in model(x)]
    compiled = compile_openvino(exports['NHWC'], 'f32', library=library,
                                input_shape=input_shape)
    results = compiled(x.numpy())
    for output, want in zip(compiled.outputs, expected):
        got = results[output]
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def runtime_nodes(path, library):
    """[(layer type, executed, original layer names)] of one profiled static call."""
    compiled = compile_openvino(path, 'f32', threads=1, library=library,
                                config={'PERF_COUNT': True}, input_shape=(1, 3, SIZE, SIZE))
    compiled(np.zeros((1, 3, SIZE, SIZE), np.float32))
    nodes = []
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        nodes.append((info['layerType'].astype(str),
                      info['execTimeMcs'].astype(str) != 'not_executed',
                      info['originalLayersNames'].astype(str).split(',')))
    return nodes


def test_runtime_graph_fuses_prelu_and_drops_reorders(exports, library, core):
    """Every PRelu of the IR runs inside a convolution (the export gives each its
    own slope constant); the rewrite leaves fewer executed layout conversions
    than the planar export, and none next to a DiCEFuse node."""
    prelus = {op.get_friendly_name() for op in core.read_model(exports['NHWC']).get_ops()
              if op.get_type_name() == 'PRelu'}
    nodes = runtime_nodes(exports['NHWC'], library)
    in_convolutions = {name for layer, _, names in nodes if layer == 'Convolution'
                       for name in names}
    assert prelus and prelus <= in_convolutions
    reorders = sum(layer in ('Reorder', 'Transpose') and executed
                   for layer, executed, _ in nodes)
    planar = sum(layer in ('Reorder', 'Transpose') and executed
                 for layer, executed, _ in runtime_nodes(exports['NCHW'], library))
    assert reorders < planar / 2
