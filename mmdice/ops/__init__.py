"""Operators of mmdice; importing them needs torch only."""
from .dim_conv import EXT_AVAILABLE, DimConv2d, dim_conv, dim_conv_reference

__all__ = ['DimConv2d', 'dim_conv', 'dim_conv_reference', 'EXT_AVAILABLE']
