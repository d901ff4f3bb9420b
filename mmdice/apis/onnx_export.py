"""ONNX export of mmdice models (torch's dynamo exporter) and its onnxruntime check."""
from typing import List, Tuple

import numpy as np
import torch
from torch import nn
from torch.utils import _pytree

#: ONNX opset of the exports.
OPSET = 18


def flat_outputs(outputs) -> List[torch.Tensor]:
    """The tensors of a nested output, in the order ONNX lists them."""
    return [leaf for leaf in _pytree.tree_leaves(outputs) if isinstance(leaf, torch.Tensor)]


def export_onnx(module: nn.Module, example: torch.Tensor, path: str) -> None:
    """Export ``module(example)`` to ``path`` with the mmdice ops translated."""
    from mmdice.ops.onnx import onnx_translation_table, prelu_slopes_at_most_one
    module.eval()
    table = onnx_translation_table(prelu_slopes_at_most_one(module))
    with torch.no_grad():
        torch.onnx.export(module, (example, ), path, dynamo=True, opset_version=OPSET,
                          input_names=['input'], custom_translation_table=table)


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


def check_onnx(path: str, module: nn.Module, example: torch.Tensor) -> Tuple[int, float]:
    """Run the export in onnxruntime on ``example``; (number of outputs, largest
    error of any output relative to its largest PyTorch magnitude)."""
    session = onnx_session(path)
    actual = session.run(None, {session.get_inputs()[0].name: example.numpy()})
    with torch.no_grad():
        expected = flat_outputs(module(example))
    if len(actual) != len(expected):
        raise ValueError(f'the ONNX model has {len(actual)} outputs, PyTorch {len(expected)}')
    errors = []
    for got, want in zip(actual, expected):
        want = want.detach().numpy()
        if got.shape != want.shape:
            raise ValueError(f'ONNX output shape {got.shape} differs from PyTorch {want.shape}')
        errors.append(float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12)))
    return len(actual), max(errors)
