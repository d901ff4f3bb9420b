"""``with_cp`` of the stage units: recompute a forward in backward to save memory."""
from typing import Callable

import torch
import torch.utils.checkpoint as cp
from torch import Tensor, nn


def forward_with_cp(module: nn.Module, forward: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``forward(x)``, recomputed in backward (``torch.utils.checkpoint``) when
    ``module.with_cp`` is set and it trains with grad enabled."""
    if module.with_cp and module.training and torch.is_grad_enabled():
        return cp.checkpoint(forward, x, use_reentrant=False)
    return forward(x)
