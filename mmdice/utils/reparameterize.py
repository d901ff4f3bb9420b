"""Deploy checkpoints: a trained model's DiCENet backbones in their deploy form."""
from typing import Union

import torch
from mmengine.config import Config
from torch import nn


def reparameterize_checkpoint(config: Union[str, Config], checkpoint: str, out: str) -> nn.Module:
    """Load ``checkpoint`` into the model of ``config``, switch every DiCENet
    in it to the deploy form and save the state dict to ``out``.

    The result loads strictly into the same config with
    ``model.backbone.deploy=True`` (mmpretrain's RepVGG/MobileOne convention);
    other modules are left as trained. Returns the converted model.
    """
    from mmengine.runner import load_checkpoint

    from mmdice.apis import build_model_from_config
    from mmdice.models import DiCENet
    model = build_model_from_config(config)
    load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    backbones = [module for module in model.modules() if isinstance(module, DiCENet)]
    if not backbones:
        raise ValueError(f'the model of {config} contains no mmdice.DiCENet to convert')
    for backbone in backbones:
        backbone.switch_to_deploy()
    torch.save({'state_dict': model.state_dict(), 'meta': {'deploy': True}}, out)
    return model
