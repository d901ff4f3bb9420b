"""Deploy checkpoints: a trained model's mmdice modules in their deploy form."""
import os
from typing import List, Union

import torch
from mmengine.config import Config
from torch import nn

from .model import build_model_from_config


def deploy_cfg_options(model: nn.Module) -> List[str]:
    """The ``--cfg-options`` that build ``model``'s config in the deploy form
    :func:`mmdice.models.switch_to_deploy` leaves, e.g.
    ``['model.backbone.deploy=True', 'model.decode_head.deploy=True']``."""
    from mmdice.models import outermost_deploy_modules
    return ['.'.join(filter(None, ('model', name, 'deploy=True')))
            for name, _ in outermost_deploy_modules(model)]


def reparameterize_checkpoint(config: Union[str, os.PathLike, Config], checkpoint: str,
                              out: str) -> nn.Module:
    """Load ``checkpoint`` into the model of ``config``, convert it to the
    deploy form (:func:`build_model_from_config` with ``deploy=True``) and
    save the state dict to ``out``.

    The result loads strictly into the same config with ``deploy=True`` for
    each converted module (:func:`deploy_cfg_options`, e.g.
    ``model.backbone.deploy=True``: mmpretrain's RepVGG/MobileOne
    convention); other modules are left as trained. Returns the converted model.
    """
    model = build_model_from_config(config, checkpoint, deploy=True)
    if not deploy_cfg_options(model):
        raise ValueError(f'the model of {config} contains no mmdice module with a deploy form '
                         '(e.g. mmdice.DiCENet) to convert')
    torch.save({'state_dict': model.state_dict(), 'meta': {'deploy': True}}, out)
    return model
