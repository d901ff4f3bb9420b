"""mmdice: DiCENet for the OpenMMLab codebases.

Importing ``mmdice`` is cheap: it imports neither torch nor any OpenMMLab
codebase. ``mmdice.ops`` needs torch only; ``mmdice.models`` needs mmengine
and mmcv. It lets configs inherit mmdice's own as ``_base_ = 'mmdice::REL'``
(:mod:`mmdice.config_prefix`).
"""
from .config_prefix import install_config_prefix
from .version import __version__

__all__ = ['__version__']

install_config_prefix()
