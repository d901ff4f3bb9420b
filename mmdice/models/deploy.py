"""Deploy (inference) form of any model that contains DiCE modules."""
from mmcv.cnn import ConvModule
from torch import nn

from .layers import DiCEUnit
from .utils import fold_conv_module


def switch_to_deploy(model: nn.Module) -> nn.Module:
    """Convert ``model`` (a backbone, classifier, segmentor, detector...) in place.

    Every :class:`DiCEUnit` gets its fused DimConv op, every conv -> BatchNorm
    ``ConvModule`` (in the DiCE modules and anywhere else) its BatchNorm folded
    into the conv, and every module with a ``deploy`` flag (e.g. ``DiCENet``)
    is marked deployed. Exact in eval mode; inference only. Idempotent.

    Returns:
        ``model`` itself.
    """
    for module in list(model.modules()):
        if isinstance(module, DiCEUnit):
            module.switch_to_deploy()
    for module in list(model.modules()):
        if isinstance(module, ConvModule):
            fold_conv_module(module)
        if isinstance(getattr(module, 'deploy', None), bool):
            module.deploy = True
    return model
