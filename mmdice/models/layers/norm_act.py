"""BatchNorm + PReLU as one op, and a ConvModule that uses it."""
from mmcv.cnn import ConvModule
from torch import Tensor, nn

from mmdice.ops import batch_norm_prelu
from ..deploy import DeployMixin
from ..utils import fold_conv_module


def _batch_norm_arguments(norm: nn.BatchNorm2d) -> tuple:
    """(running_mean, running_var, training, momentum) of ``norm``'s next
    forward, with its ``num_batches_tracked`` counted as ``nn.BatchNorm2d``
    counts it."""
    momentum = 0.0 if norm.momentum is None else norm.momentum
    if norm.training and norm.track_running_stats and norm.num_batches_tracked is not None:
        norm.num_batches_tracked.add_(1)
        if norm.momentum is None:  # cumulative moving average
            momentum = 1.0 / float(norm.num_batches_tracked)
    use_batch_stats = norm.training or (norm.running_mean is None and norm.running_var is None)
    keep_running = not norm.training or norm.track_running_stats
    return (norm.running_mean if keep_running else None,
            norm.running_var if keep_running else None, use_batch_stats, momentum)


def norm_act(x: Tensor, norm: nn.Module, act: nn.Module) -> Tensor:
    """``act(norm(x))``; one :func:`~mmdice.ops.batch_norm_prelu` when ``norm``
    is a plain ``nn.BatchNorm2d`` and ``act`` a ``nn.PReLU`` (same result,
    same running-statistics updates). SyncBatchNorm and other layers run as
    they are."""
    if type(norm) is not nn.BatchNorm2d or type(act) is not nn.PReLU:
        return act(norm(x))
    running_mean, running_var, training, momentum = _batch_norm_arguments(norm)
    return batch_norm_prelu(x, running_mean, running_var, norm.weight, norm.bias, act.weight,
                            training, momentum, norm.eps)


class ConvNormAct(DeployMixin, ConvModule):
    """mmcv ``ConvModule`` whose conv -> BatchNorm -> PReLU runs the fused
    :func:`norm_act`; any other order, norm or activation, and calls with
    ``norm=False`` or ``activate=False``, run ``ConvModule``'s own forward.
    Same arguments, parameters and state-dict keys as ``ConvModule``.

    Deploy form (:meth:`switch_to_deploy`): the BatchNorm folded into the conv.
    """

    def forward(self, x: Tensor, activate: bool = True, norm: bool = True) -> Tensor:
        if not (activate and norm and self.with_norm and self.with_activation
                and self.order == ('conv', 'norm', 'act')):
            return super().forward(x, activate, norm)
        if self.with_explicit_padding:
            x = self.padding_layer(x)
        return norm_act(self.conv(x), self.norm, self.activate)

    def switch_to_deploy(self) -> None:
        """Fold a BatchNorm that follows the conv into it, in place (each
        layer's own eps, in float64). Exact in eval mode, idempotent."""
        fold_conv_module(self)
        self.deploy = True
