"""The authors' EdgeNets DiCENet checkpoint files as mmdice checkpoints."""
from typing import Dict

from torch import Tensor

from mmdice.models.utils.edgenets_converter import (EdgeNetsConversion,
                                                    convert_edgenets_state_dict)
from mmdice.utils import check_output_file, read_checkpoint, write_checkpoint


def load_edgenets_state_dict(path: str) -> Dict[str, Tensor]:
    """Load a released EdgeNets file (legacy pickle, CUDA tensors) on the CPU."""
    obj = read_checkpoint(path, weights_only=True)
    if isinstance(obj, dict) and 'state_dict' in obj and isinstance(obj['state_dict'], dict):
        obj = obj['state_dict']
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError(f'{path} does not hold a state dict of tensors')
    return dict(obj)


def convert_edgenets_checkpoint(src: str, dst: str) -> EdgeNetsConversion:
    """Convert the file ``src`` (:func:`~mmdice.models.utils.edgenets_converter.
    convert_edgenets_state_dict`) and save ``{'state_dict', 'meta'}`` to ``dst``
    (written whole or not at all). ``meta`` records the build settings
    (``task``, ``widen_factor``, ``input_size``, ``deploy=False``) that
    :func:`mmdice.utils.check_checkpoint_fits` names when a config differs."""
    check_output_file(dst)
    result = convert_edgenets_state_dict(load_edgenets_state_dict(src), source=src)
    result.meta.setdefault('deploy', False)
    write_checkpoint({'state_dict': result.state_dict, 'meta': result.meta}, dst)
    return result
