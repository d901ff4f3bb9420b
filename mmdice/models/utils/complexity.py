"""FLOP counting for models containing the fused ``mmdice::dim_conv`` operator.

mmengine's jit-based analyzers count a torch.library operator only if a handle
is registered under its name; :func:`register_dim_conv_handles` registers
handles for ``mmdice::dim_conv`` with every ``FlopAnalyzer`` /
``ActivationAnalyzer`` created afterwards (``get_model_complexity_info``
included). Without the extension, DimConv runs as three ordinary convolutions
and is counted as ``conv`` with the same multiply-adds.

The DiCENet paper (and the EdgeNets README) count "FLOPs" as the
multiply-adds of convolutions and linear layers only (no bias, norm, pooling
or activation): :func:`count_complexity` returns that number beside
mmengine's total (which adds norms, pooling and interpolation).
"""
from collections import Counter
from typing import Any, Dict, List, Sequence, Tuple, Union

from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.analysis import complexity_analysis
from mmengine.analysis.jit_handles import get_shape
import torch
from torch import Tensor, nn

__all__ = [
    'DIM_CONV_OP', 'PAPER_OPERATORS', 'dim_conv_flop_jit', 'dim_conv_activation_jit',
    'register_dim_conv_handles', 'count_complexity', 'classifier_paper_flops'
]

#: Name of the fused operator in a traced graph.
DIM_CONV_OP = 'mmdice::dim_conv'
#: Operators (mmengine's short names) counted in the paper's convention.
PAPER_OPERATORS = ('conv', 'dim_conv', 'linear', 'addmm', 'matmul', 'mm', 'bmm', 'einsum')


def dim_conv_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """Multiply-adds of ``mmdice::dim_conv(x, w_depth, w_height, w_width, dilation)``.

    k*k per output element of each branch: depth-wise ``N*C*H*W``, height-wise
    ``N*C*Hm*W`` and width-wise ``N*C*H*Wm`` elements (Hm = H, Wm = W for the
    fused kernel), as the three grouped convolutions of the reference.
    """
    batch, channels, height, width = get_shape(inputs[0])
    rows = get_shape(inputs[2])[0]
    columns, _, kernel_h, kernel_w = get_shape(inputs[3])
    per_channel = height * width + rows * width + height * columns
    return batch * channels * per_channel * kernel_h * kernel_w


def dim_conv_activation_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """Activations of ``mmdice::dim_conv``: its output elements (like conv)."""
    shape = get_shape(outputs[0])
    count = 1
    for size in shape:
        count *= size
    return count


def register_dim_conv_handles() -> None:
    """Make mmengine's analyzers count ``mmdice::dim_conv`` (idempotent)."""
    complexity_analysis._DEFAULT_SUPPORTED_FLOP_OPS[DIM_CONV_OP] = dim_conv_flop_jit
    complexity_analysis._DEFAULT_SUPPORTED_ACT_OPS[DIM_CONV_OP] = dim_conv_activation_jit


def count_complexity(model: nn.Module, inputs: Union[Tensor, Tuple[Any, ...]]
                     ) -> Dict[str, Any]:
    """Trace ``model(*inputs)`` once and count its FLOPs and parameters.

    Args:
        model: the model; put it in eval mode first for inference counts.
        inputs: the input tensor or a tuple of positional inputs.

    Returns:
        dict with ``paper_flops`` (multiply-adds of convolutions, DimConv and
        linear layers: the DiCENet paper's "FLOPs"), ``flops`` (mmengine's
        total), ``by_operator`` (Counter of mmengine's operator names),
        ``params`` (parameter count) and ``unsupported_ops`` (Counter of
        operators mmengine skipped).
    """
    register_dim_conv_handles()
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    by_operator = Counter(analyzer.by_operator())
    return dict(
        paper_flops=sum(by_operator[name] for name in PAPER_OPERATORS),
        flops=analyzer.total(),
        by_operator=by_operator,
        params=parameter_count(model)[''],
        unsupported_ops=Counter(analyzer.unsupported_ops()))


class _LinearClassifier(nn.Module):
    """A backbone's last returned level -> global average pooling -> nn.Linear."""

    def __init__(self, backbone: nn.Module, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(backbone.out_channels[-1], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.backbone(x)[-1].mean((2, 3)))


def classifier_paper_flops(backbone: nn.Module, num_classes: int = 1000,
                           input_size: Union[int, Sequence[int]] = 224) -> int:
    """The paper's FLOPs (``paper_flops`` of :func:`count_complexity`) of an
    image classifier: ``backbone`` in eval mode, global average pooling of its
    last returned level (``backbone.out_channels[-1]`` channels) and
    ``nn.Linear(out_channels[-1], num_classes)``, on one image of
    ``input_size`` (int or (H, W)). The backbone's mode is restored."""
    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    classifier = _LinearClassifier(backbone, num_classes)
    was_training = backbone.training
    try:
        with torch.no_grad():
            counts = count_complexity(classifier.eval(), torch.randn(1, 3, height, width))
    finally:
        backbone.train(was_training)
    return counts['paper_flops']
