"""Deploy (inference) form of the mmdice modules, and of any model containing them."""
from typing import Iterator, Tuple

from torch import nn


class DeployMixin:
    """Base of the mmdice modules that have a deploy (inference) form.

    :meth:`switch_to_deploy` converts the module in place, the mmdice modules
    inside it included, and sets ``deploy``; exact in eval mode, for
    inference only, a no-op once converted (mmpretrain's RepVGG/MobileOne
    convention). Those that configs build as a model part (``DiCENet``, the
    heads, the neck) take a ``deploy`` argument that builds the converted
    form directly, to load a converted checkpoint.
    """

    #: whether the module is in its deploy form.
    deploy: bool = False

    def switch_to_deploy(self) -> None:
        raise NotImplementedError(f'{type(self).__name__} must implement switch_to_deploy')


def outermost_deploy_modules(model: nn.Module,
                             prefix: str = '') -> Iterator[Tuple[str, DeployMixin]]:
    """(name, module) of the :class:`DeployMixin` modules of ``model`` that
    no other one contains (``''`` for ``model`` itself), in definition order."""
    if isinstance(model, DeployMixin):
        yield prefix, model
        return
    for name, child in model.named_children():
        yield from outermost_deploy_modules(child, f'{prefix}.{name}' if prefix else name)


def switch_to_deploy(model: nn.Module) -> nn.Module:
    """Convert the mmdice modules of ``model`` (a backbone, classifier,
    segmentor, detector...) to their deploy form, in place.

    Calls :meth:`DeployMixin.switch_to_deploy` of every outermost mmdice
    module with a deploy form (e.g. ``DiCENet``, ``DiCESegHead``,
    ``DiCESSDNeck``), which converts the modules inside it. Other modules are
    left exactly as they are, including their BatchNorms and ``deploy``
    flags (e.g. mmpretrain's ``RepVGGBlock``, converted by its own
    ``switch_to_deploy``); to fold other conv -> BatchNorm pairs as well,
    call mmcv's ``mmcv.cnn.fuse_conv_bn`` on them explicitly. Exact in eval
    mode; inference only. Idempotent.

    Returns:
        ``model`` itself.
    """
    for _, module in list(outermost_deploy_modules(model)):
        module.switch_to_deploy()
    return model
