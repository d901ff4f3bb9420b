"""Mixed precision training in bfloat16 on any device, CPUs included.

mmengine 0.10.7's ``AmpOptimWrapper`` asserts a GPU (or NPU, MLU, MUSA) and
scales the loss for float16, so it cannot train on a CPU. bfloat16 keeps
float32's exponent range: gradients neither underflow nor overflow where
float32 ones would not, so no loss scaling is needed, and this wrapper only
runs the forward pass (and so the loss) under ``torch.autocast``.
"""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from mmengine.runner.amp import autocast
from torch import nn

from mmdice.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class BF16OptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose ``optim_context`` autocasts to bfloat16.

    The device is mmengine's choice: CUDA when available, else the CPU.
    Parameters, gradients and optimizer state stay float32. Takes the
    arguments of :class:`mmengine.optim.OptimWrapper`.
    """

    @contextmanager
    def optim_context(self, model: nn.Module):
        with super().optim_context(model), autocast(dtype=torch.bfloat16):
            yield
