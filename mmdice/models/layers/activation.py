"""Activation configs whose layer needs the channel count (PReLU)."""
from typing import Optional

from mmcv.cnn import build_activation_layer
from torch import nn

#: Activations whose ``num_parameters`` is one learnable slope per channel.
PER_CHANNEL_ACTIVATIONS = ('PReLU', nn.PReLU)


def act_cfg_for(act_cfg: Optional[dict], num_channels: int) -> Optional[dict]:
    """Return a copy of ``act_cfg`` that fits a layer of ``num_channels``.

    A PReLU config without ``num_parameters`` gets one slope per channel (the
    reference's ``nn.PReLU(C)``); other configs are returned unchanged.
    """
    if act_cfg is None:
        return None
    act_cfg = dict(act_cfg)
    if act_cfg.get('type') in PER_CHANNEL_ACTIVATIONS:
        act_cfg.setdefault('num_parameters', num_channels)
    return act_cfg


def build_act(act_cfg: dict, num_channels: int) -> nn.Module:
    """Build the activation of ``act_cfg`` for ``num_channels`` channels."""
    return build_activation_layer(act_cfg_for(act_cfg, num_channels))
