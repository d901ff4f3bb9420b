"""Backbones of mmdice."""
from .dice_mobilenet import DiCEMobileNet
from .dice_resnet import DiCEResNet
from .dicenet import DiCENet

__all__ = ['DiCENet', 'DiCEMobileNet', 'DiCEResNet']
