"""Backbones of mmdice."""
from .dicenet import DiCENet

__all__ = ['DiCENet']
