"""OpenVINO IR export of mmdice models with the mmdice ops as OpenVINO extension
nodes, and its check against PyTorch.

The model goes through the ONNX export (:func:`~mmdice.apis.export_onnx`) with
the fused DiCE ops written as ``mmdice.DiCEFuse`` custom-domain nodes (at
other sizes than their build size with banded kernels: their export form,
switched on by :func:`banded_export_form`); by default the graph is then
rewritten channels-last for the CPU plugin, with the ends of ShuffleNet
blocks as ``mmdice.ShuffleGatedConcat`` nodes
(:func:`~mmdice.apis.openvino_graph.rewrite_for_openvino_cpu`). OpenVINO's
ONNX frontend maps them to the extension's operations
(:mod:`mmdice.ops.openvino`); the IR (``.xml`` + ``.bin``, float32 weights)
records the inference precision in its ``rt_info`` (``runtime_options`` /
``INFERENCE_PRECISION_HINT``), which :func:`compile_openvino` applies. The
CPU plugin turns the rewritten graph's layout changes into free
reinterpretations only for static shapes: compile with ``input_shape``.
"""
import contextlib
import os
import os.path as osp
import shutil
import tempfile
from typing import Iterator, List, Optional, Sequence, Tuple

import torch
from torch import nn

from .onnx_export import compare_with_pytorch, export_onnx, move_into_folder

#: Inference precisions of the export: OpenVINO's INFERENCE_PRECISION_HINT values.
PRECISIONS = ('f32', 'bf16')

#: Layouts of the exported graph's mmdice nodes: 'NHWC' rewrites the graph
#: channels-last (:func:`~mmdice.apis.openvino_graph.rewrite_for_openvino_cpu`),
#: 'NCHW' keeps planar DiCEFuse nodes and standard block ends.
DICE_LAYOUTS = ('NHWC', 'NCHW')

#: Where the IR records its precision.
PRECISION_RT_INFO = ['runtime_options', 'INFERENCE_PRECISION_HINT']


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else a ValueError naming them."""
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
    return precision


def count_dice_fuse(module: nn.Module) -> int:
    """Number of fused DiCE modules (:class:`~mmdice.ops.DimConvFuse2d`, the deploy
    form of DiCE units) in ``module``: those the extension runs."""
    from mmdice.ops import DimConvFuse2d
    return sum(isinstance(layer, DimConvFuse2d) for layer in module.modules())


@contextlib.contextmanager
def banded_export_form(module: nn.Module, example: torch.Tensor) -> Iterator[nn.Module]:
    """Within the block, the fused DiCE modules (:class:`~mmdice.ops.DimConvFuse2d`)
    of ``module`` run their banded export form (``banded_export``: one op, so
    one ``DiCEFuse`` node, at other sizes than their build size). Their banded
    kernels are computed on entry by running ``module(example)``; the weights
    must not change in the block."""
    from mmdice.ops import DimConvFuse2d
    layers = [layer for layer in module.modules() if isinstance(layer, DimConvFuse2d)]
    try:
        for layer in layers:
            layer.use_banded_export(True)
        with torch.no_grad():
            module(example)
        yield module
    finally:
        for layer in layers:
            layer.use_banded_export(False)


#: Operations whose constant inputs each get their own copy in the IR: the CPU
#: plugin fuses such a node into the preceding convolution only when its
#: constant feeds no other node.
POST_OP_TYPES = ('PRelu', )


def unshare_activation_constants(model) -> int:
    """Give every :data:`POST_OP_TYPES` node of the OpenVINO ``model`` its own
    copy of each constant input that other nodes share (the ONNX export merges
    equal initializers, e.g. the PReLU slopes of an untrained model), in place.
    Returns the number of inputs rewired."""
    import openvino.opset13 as opset
    rewired = 0
    for node in model.get_ordered_ops():
        if node.get_type_name() not in POST_OP_TYPES:
            continue
        for port in node.inputs()[1:]:
            source = port.get_source_output()
            constant = source.get_node()
            if constant.get_type_name() == 'Constant' and len(source.get_target_inputs()) > 1:
                port.replace_source_output(opset.constant(constant.get_data().copy()).output(0))
                rewired += 1
    return rewired


def export_openvino(module: nn.Module,
                    example: torch.Tensor,
                    path: str,
                    precision: str = 'f32',
                    output_names: Optional[Sequence[str]] = None,
                    library: Optional[str] = None,
                    dice_layout: str = 'NHWC') -> List[str]:
    """Export ``module(example)`` to the OpenVINO IR ``path`` (``.xml``, and the
    ``.bin`` beside it) with the mmdice ops as extension nodes.

    The batch axis is dynamic, height and width as in :func:`export_onnx`.
    ``precision``: 'f32' or 'bf16', recorded in the IR. ``library``: the
    extension library (default: built or found by
    :func:`~mmdice.ops.openvino.build_openvino_extension`). ``dice_layout``:
    one of :data:`DICE_LAYOUTS`. Raises ValueError for another precision or
    layout, or a model without DiCE modules
    (:func:`count_dice_fuse`). Returns the written paths.
    """
    import openvino as ov

    from mmdice.ops.openvino import build_openvino_extension
    check_precision(precision)
    if dice_layout not in DICE_LAYOUTS:
        raise ValueError(f'dice_layout must be one of {DICE_LAYOUTS}, got {dice_layout!r}')
    if not path.endswith('.xml'):
        raise ValueError(f'path must name an OpenVINO IR .xml file, got {path!r}')
    if not count_dice_fuse(module):
        raise ValueError(
            'the model has no DiCE modules (DimConvFuse2d, the deploy form of a DiCE unit) '
            'for the mmdice OpenVINO extension to run; export it with standard operators '
            '(tools/deployment/pytorch2onnx.py) instead')
    library = library or build_openvino_extension()
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    staging = tempfile.mkdtemp(prefix='.openvino-export-', dir=folder)
    try:
        onnx_path = osp.join(staging, 'model.onnx')
        with banded_export_form(module, example):
            export_onnx(module, example, onnx_path, output_names=output_names,
                        mmdice_domain=True)
        if dice_layout == 'NHWC':
            rewrite_onnx_file(onnx_path)
        model = ov.convert_model(onnx_path, extension=library)
        unshare_activation_constants(model)
        model.set_rt_info(precision, PRECISION_RT_INFO)
        xml = osp.join(staging, osp.basename(path))
        ov.save_model(model, xml, compress_to_fp16=False)
        written = move_into_folder(
            staging, folder, (osp.basename(path), osp.basename(path)[:-len('.xml')] + '.bin'))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written


def rewrite_onnx_file(path: str) -> None:
    """:func:`~mmdice.apis.openvino_graph.rewrite_for_openvino_cpu` on the ONNX file ``path``."""
    import onnx

    from .openvino_graph import rewrite_for_openvino_cpu
    model = onnx.load(path)
    rewrite_for_openvino_cpu(model)
    onnx.save(model, path)


def compile_openvino(path: str, precision: Optional[str] = None, threads: int = 0,
                     library: Optional[str] = None, extension: bool = True,
                     config: Optional[dict] = None,
                     input_shape: Optional[Sequence[int]] = None):
    """The model ``path`` (IR or ONNX) compiled for OpenVINO's CPU plugin, with the
    mmdice extension loaded unless ``extension`` is False; ``precision`` ('f32',
    'bf16'; default: the one the IR records, else 'f32') as
    INFERENCE_PRECISION_HINT (on a CPU without bf16 OpenVINO runs f32);
    ``threads``: INFERENCE_NUM_THREADS (0: OpenVINO's default); ``config``:
    further CPU plugin properties (e.g. ``{'PERF_COUNT': True}``);
    ``input_shape``: a static shape of the first input, e.g. (N, 3, H, W) (the
    fastest form: the plugin plans memory layouts for it once)."""
    import openvino as ov

    from mmdice.ops.openvino import load_openvino_extension
    core = ov.Core()
    if extension:
        load_openvino_extension(core, library)
    model = core.read_model(path)
    if input_shape is not None:
        model.reshape({model.inputs[0]: list(input_shape)})
    if precision is None:
        precision = (model.get_rt_info(PRECISION_RT_INFO).astype(str)
                     if model.has_rt_info(PRECISION_RT_INFO) else 'f32')
    properties = {'INFERENCE_PRECISION_HINT': check_precision(precision), **(config or {})}
    if threads:
        properties['INFERENCE_NUM_THREADS'] = threads
    return core.compile_model(model, 'CPU', properties)


def check_openvino(path: str, module: nn.Module, example: torch.Tensor,
                   precision: str = 'f32', library: Optional[str] = None) -> Tuple[int, float]:
    """Run the IR in OpenVINO at ``precision`` on ``example``; (number of outputs,
    largest error of any output relative to its largest PyTorch magnitude)."""
    compiled = compile_openvino(path, precision, library=library)
    results = compiled(example.numpy())
    actual = [results[output] for output in compiled.outputs]
    return compare_with_pytorch(actual, module, example, 'OpenVINO')
