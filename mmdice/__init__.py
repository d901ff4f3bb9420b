"""mmdice: DiCENet for the OpenMMLab codebases.

Importing ``mmdice`` is cheap: it imports neither torch nor any OpenMMLab
codebase. ``mmdice.ops`` needs torch only; ``mmdice.models`` needs mmengine
and mmcv.
"""
from .version import __version__

__all__ = ['__version__']
