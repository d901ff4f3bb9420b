"""Building an OpenMMLab model from its config, and its tensor-mode forward."""
import os
from typing import Optional, Union

import torch
from mmengine.config import Config
from torch import nn


def build_model_from_config(config: Union[str, os.PathLike, Config],
                            checkpoint: Optional[str] = None,
                            *,
                            deploy: bool = False,
                            device: Union[str, torch.device] = 'cpu') -> nn.Module:
    """Build ``config.model`` in the config's ``default_scope`` (mmpretrain,
    mmseg, mmdet, ...), in eval mode on ``device``.

    Args:
        config: path of a config file, or a loaded ``mmengine.config.Config``.
        checkpoint: checkpoint loaded strictly into the model (on the CPU,
            before any conversion; :func:`mmdice.utils.load_checkpoint_strictly`:
            a tensor of another shape, a missing or an unexpected key raises
            ``CheckpointMismatchError`` naming the first keys); random weights without.
        deploy: convert the model to its deploy form with
            :func:`mmdice.models.switch_to_deploy` (after loading ``checkpoint``).
        device: device the model is moved to.
    """
    from mmengine.registry import MODELS, init_default_scope

    import mmdice.models  # noqa: F401  (registers mmdice's modules)
    from mmdice.utils import load_checkpoint_strictly, load_config
    if isinstance(config, (str, os.PathLike)):
        cfg = load_config(os.fspath(config))
    elif isinstance(config, Config):
        cfg = config
    else:
        raise TypeError(f'config must be a config path or an mmengine Config, '
                        f'got {type(config).__name__}')
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model = MODELS.build(cfg.model).eval()
    if checkpoint is not None:
        source = os.fspath(config) if isinstance(config, (str, os.PathLike)) else 'the config'
        load_checkpoint_strictly(model, checkpoint, target=f'the model of {source}')
    if deploy:
        mmdice.models.switch_to_deploy(model)
    return model.to(device)


class TensorModeWrapper(nn.Module):
    """An OpenMMLab model (classifier, segmentor, detector) as tensor -> tensors:
    ``model(x, mode='tensor')``, i.e. the head's raw outputs (mmseg and mmdet
    ``_forward``), without pre- or post-processing."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x, mode='tensor')
