"""ONNX export of mmdice models (torch's dynamo exporter) and its onnxruntime check."""
import os
import os.path as osp
import shutil
import tempfile
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from torch.utils import _pytree

#: ONNX opset of the exports.
OPSET = 18

#: Largest initializer total written inside the ``.onnx`` file itself: protobuf
#: cannot serialize a message of 2 GiB or more, so larger models keep their
#: weights in a ``<file>.data`` beside it.
MAX_INLINE_BYTES = 2**31 - 2**24

#: Why DiCENet models keep their export's height and width.
FIXED_SPATIAL_REASON = (
    'DimConv (DiCENet) convolves each row and each column with its own kernel, '
    'so its height- and width-wise Convs have one group per row/column of the export size')


def flat_outputs(outputs) -> List[torch.Tensor]:
    """The tensors of a nested output, in the order ONNX lists them."""
    return [leaf for leaf in _pytree.tree_leaves(outputs) if isinstance(leaf, torch.Tensor)]


def has_fixed_spatial_size(module: nn.Module) -> bool:
    """Whether an export of ``module`` only runs at the height and width it was
    exported at (it has DimConv layers, see :data:`FIXED_SPATIAL_REASON`)."""
    from mmdice.ops import DimConv2d, DimConvFuse2d
    return any(isinstance(layer, (DimConv2d, DimConvFuse2d)) for layer in module.modules())


def export_onnx(module: nn.Module,
                example: torch.Tensor,
                path: str,
                output_names: Optional[Sequence[str]] = None,
                dynamic_spatial: Optional[bool] = None,
                mmdice_domain: bool = False) -> List[str]:
    """Export ``module(example)`` to ``path`` with the mmdice ops translated.

    The input ``input`` has a dynamic batch axis, and dynamic height and width
    unless ``dynamic_spatial`` is False (default: unless the module has DimConv
    layers, see :func:`has_fixed_spatial_size`). Models under 2 GiB are written
    as one self-contained file, larger ones as ``path`` and ``path + '.data'``.
    Both are written to a temporary folder beside ``path`` and then moved in, so
    a failed export leaves nothing behind. ``mmdice_domain``: the fused DiCE
    ops become ``mmdice.DiCEFuse`` custom-domain nodes for the mmdice OpenVINO
    extension (:func:`~mmdice.ops.onnx.onnx_translation_table`) instead of
    standard operators. The
    end-to-end graphs' NMS becomes ONNX ``NonMaxSuppression``
    (:mod:`mmdice.apis.end2end`). Returns the written paths.
    """
    from mmdice.ops.onnx import onnx_translation_table, prelu_slopes_at_most_one

    from .end2end import onnx_translations
    module.eval()
    if dynamic_spatial is None:
        dynamic_spatial = not has_fixed_spatial_size(module)
    axes = {0: torch.export.Dim.AUTO}
    if dynamic_spatial:
        axes.update({axis: torch.export.Dim.AUTO for axis in range(2, example.dim())})
    table = onnx_translation_table(prelu_slopes_at_most_one(module), mmdice_domain)
    table.update(onnx_translations())
    with torch.no_grad():
        program = torch.onnx.export(module, (example, ), None, dynamo=True, opset_version=OPSET,
                                    input_names=['input'], output_names=output_names,
                                    dynamic_shapes=(axes, ), custom_translation_table=table)
    weight_bytes = sum(value.const_value.nbytes
                       for value in program.model.graph.initializers.values()
                       if value.const_value is not None)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    staging = tempfile.mkdtemp(prefix='.onnx-export-', dir=folder)
    try:
        program.save(osp.join(staging, osp.basename(path)),
                     external_data=weight_bytes > MAX_INLINE_BYTES)
        # the .onnx first, then its .data
        return move_into_folder(staging, folder, sorted(os.listdir(staging)))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def move_into_folder(staging: str, folder: str, names: Sequence[str]) -> List[str]:
    """Move the files ``names`` of the export's ``staging`` folder into ``folder``
    (``os.replace``: each appears whole), in order; their new paths."""
    written = []
    for name in names:
        target = osp.join(folder, name)
        os.replace(osp.join(staging, name), target)
        written.append(target)
    return written


def onnx_session(path: str, threads: int = 0):
    """An onnxruntime CPU session; ``threads`` intra-op threads (0: its default).

    Its threads do not spin while waiting: on a machine shared with other
    processes spinning threads steal the cores the work needs.
    """
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    if threads:
        options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def compare_with_pytorch(actual: Sequence[np.ndarray], module: nn.Module,
                         example: torch.Tensor, runtime: str) -> Tuple[int, float]:
    """(number of outputs, largest error of any of a runtime's ``actual``
    outputs relative to the largest magnitude of ``module(example)``'s)."""
    with torch.no_grad():
        expected = flat_outputs(module(example))
    if len(actual) != len(expected):
        raise ValueError(f'the {runtime} model has {len(actual)} outputs, PyTorch {len(expected)}')
    errors = []
    for got, want in zip(actual, expected):
        want = want.detach().numpy()
        if got.shape != want.shape:
            raise ValueError(f'{runtime} output shape {got.shape} differs from PyTorch {want.shape}')
        errors.append(float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12)))
    return len(actual), max(errors)


def check_onnx(path: str, module: nn.Module, example: torch.Tensor) -> Tuple[int, float]:
    """Run the export in onnxruntime on ``example``; (number of outputs, largest
    error of any output relative to its largest PyTorch magnitude)."""
    session = onnx_session(path)
    actual = session.run(None, {session.get_inputs()[0].name: example.numpy()})
    return compare_with_pytorch(actual, module, example, 'ONNX')
