"""Deploy (inference) form of the mmdice modules, and of any model containing them."""
from typing import Iterator, Tuple

import torch
from torch import Tensor, nn

from mmdice.ops.extension import in_reference_graph


class DeployMixin:
    """Base of the mmdice modules that have a deploy (inference) form.

    :meth:`switch_to_deploy` converts the module in place, the mmdice modules
    inside it included, and sets ``deploy``; exact in eval mode, for
    inference only, a no-op once converted (mmpretrain's RepVGG/MobileOne
    convention). Those that configs build as a model part (``DiCENet``, the
    heads, the neck) take a ``deploy`` argument that builds the converted
    form directly, to load a converted checkpoint.

    The deploy form runs fused ops without autograd, so it cannot be
    trained: ``train()`` (what training loops call) raises, and so does a
    forward that would need a gradient of the fused op (grad mode on and the
    input or the fused weights requiring grad). Inference calls ``eval()``
    and runs under ``torch.no_grad()``. Subclasses list this mixin before
    their ``nn.Module`` base so that its ``train`` comes first.
    """

    #: whether the module is in its deploy form.
    deploy: bool = False

    def switch_to_deploy(self) -> None:
        raise NotImplementedError(f'{type(self).__name__} must implement switch_to_deploy')

    def train(self, mode: bool = True):
        if mode and self.deploy:
            raise RuntimeError(self._inference_only_message('cannot be put in training mode'))
        return super().train(mode)

    def refuse_gradient(self, x: Tensor, weight: Tensor) -> None:
        """Raise if a gradient of the fused op computed on ``x`` with ``weight``
        could be asked for (the ops have no autograd: it would be silently wrong;
        inside :func:`~mmdice.ops.extension.reference_graph` their references run)."""
        if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad) \
                and not in_reference_graph():
            raise RuntimeError(self._inference_only_message(
                'cannot compute gradients (run it under torch.no_grad() or '
                'torch.inference_mode() for inference)'))

    def _inference_only_message(self, refusal: str) -> str:
        return (f'{type(self).__name__} is in its deploy form (deploy=True), which is for '
                f'inference only (fused ops without autograd) and {refusal}; to train, '
                f'build the training form (deploy=False, e.g. --cfg-options '
                f'model.backbone.deploy=False) from a training-form checkpoint, and '
                f'convert it with switch_to_deploy() after training')


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
