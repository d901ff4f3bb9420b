"""Necks of mmdice."""
from .dice_ssd_neck import DiCESSDNeck

__all__ = ['DiCESSDNeck']
