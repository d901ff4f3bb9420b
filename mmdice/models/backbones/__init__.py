"""Backbones of mmdice."""
from .dice_mobilenet import DiCEMobileNet
from .dicenet import DiCENet

__all__ = ['DiCENet', 'DiCEMobileNet']
