"""Deploy checkpoints: a trained model's mmdice modules in their deploy form."""
import os
from typing import List, Union

from mmengine.config import Config
from torch import nn

from mmdice.utils import build_settings, check_output_file, write_checkpoint
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
    save the state dict to ``out`` (written whole or not at all), with the
    model's :func:`~mmdice.utils.build_settings` (``deploy=True``) as ``meta``.

    The result loads strictly into the same config with ``deploy=True`` for
    each converted module (:func:`deploy_cfg_options`, e.g.
    ``model.backbone.deploy=True``: mmpretrain's RepVGG/MobileOne
    convention); other modules are left as trained. Returns the converted model.
    """
    check_output_file(out)
    model = build_model_from_config(config, checkpoint, deploy=True)
    if not deploy_cfg_options(model):
        raise ValueError(f'the model of {config} contains no mmdice module with a deploy form '
                         '(e.g. mmdice.DiCENet) to convert')
    meta = {**build_settings(model), 'deploy': True}
    write_checkpoint({'state_dict': model.state_dict(), 'meta': meta}, out)
    return model
