"""The EdgeNets "hybrid" schedule: short cycles, then a linear decay.

Per epoch e (counted from ``begin``), with E = end - begin epochs, C =
``cyclic_epochs`` and L = ``cycle_len``, the factor on the initial value is

* e = 0: 1 (one warm-up epoch at the base value);
* 0 < e < C: L - ((e - 1) mod L), i.e. L, L-1, ..., 1, L, L-1, ...;
* e >= C: 1 - k / (E - C + 1) with k = e - C + 1 (linear decay towards 0).

With lr 0.009, E = 100, C = 61, L = 5: 0.009, 0.045, 0.036, 0.027, 0.018,
0.009, 0.045, ..., epoch 61 -> 0.008775, ..., epoch 99 -> 0.000225 (EdgeNets
``utilities/lr_scheduler.py`` ``HybirdLR``, which rounds to 6 decimals; this
scheduler does not round, so groups with other base values scale exactly).
"""
from typing import List, Optional, Union

from mmengine.optim import BaseOptimWrapper
from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import _ParamScheduler
from torch.optim import Optimizer

from mmdice.registry import PARAM_SCHEDULERS


def hybrid_factor(epoch: int, num_epochs: int, cyclic_epochs: int, cycle_len: int) -> float:
    """Multiplier of the base value at ``epoch`` (0-based) of the hybrid schedule."""
    if epoch == 0:
        return 1.0
    if epoch < cyclic_epochs:
        return float(cycle_len - (epoch - 1) % cycle_len)
    return 1.0 - (epoch - cyclic_epochs + 1) / (num_epochs - cyclic_epochs + 1)


@PARAM_SCHEDULERS.register_module()
class HybridParamScheduler(_ParamScheduler):
    """Cyclic-then-linear schedule of EdgeNets (see the module docstring).

    Args:
        optimizer: wrapped optimizer or optimizer.
        param_name: parameter to schedule, e.g. ``'lr'``.
        cyclic_epochs: epochs of the cyclic phase (EdgeNets ``--clr-max``).
        cycle_len: epochs per cycle; the cycle peaks at ``cycle_len`` x base.
        begin: first step of the schedule.
        end: step after the last one; ``end - begin`` is the number of epochs
            (x ``epoch_length`` when iteration based). Must be finite.
        epoch_length: iterations per epoch when ``by_epoch=False`` (the value
            then changes once per epoch, as in the reference); 1 otherwise.
        last_step: index of the last step, for resuming without state dict.
        by_epoch: whether steps are epochs.
        verbose: print each update.
    """

    def __init__(self,
                 optimizer: Union[Optimizer, BaseOptimWrapper],
                 param_name: str,
                 cyclic_epochs: int,
                 cycle_len: int = 5,
                 begin: int = 0,
                 end: Optional[int] = None,
                 epoch_length: int = 1,
                 last_step: int = -1,
                 by_epoch: bool = True,
                 verbose: bool = False):
        if end is None:
            raise ValueError('end must be given: the linear phase needs the total number '
                             'of epochs (end - begin)')
        if not isinstance(epoch_length, int) or epoch_length < 1:
            raise ValueError(f'epoch_length must be a positive int, got {epoch_length!r}')
        if by_epoch and epoch_length != 1:
            raise ValueError('epoch_length must be 1 when by_epoch=True, '
                             f'got {epoch_length}')
        if (end - begin) % epoch_length:
            raise ValueError(f'end - begin ({end - begin}) must be a multiple of '
                             f'epoch_length ({epoch_length})')
        num_epochs = (end - begin) // epoch_length
        if not isinstance(cyclic_epochs, int) or not 0 < cyclic_epochs <= num_epochs:
            raise ValueError(f'cyclic_epochs must be an int in [1, {num_epochs}] '
                             f'(the number of epochs), got {cyclic_epochs!r}')
        if not isinstance(cycle_len, int) or cycle_len < 1:
            raise ValueError(f'cycle_len must be a positive int, got {cycle_len!r}')
        self.cyclic_epochs = cyclic_epochs
        self.cycle_len = cycle_len
        self.epoch_length = epoch_length
        self.num_epochs = num_epochs
        super().__init__(
            optimizer,
            param_name=param_name,
            begin=begin,
            end=end,
            last_step=last_step,
            by_epoch=by_epoch,
            verbose=verbose)

    @classmethod
    def build_iter_from_epoch(cls, *args, begin: int = 0, end: Optional[int] = None,
                              by_epoch: bool = True, epoch_length: Optional[int] = None,
                              **kwargs):
        """Build an iteration-based instance from an epoch-based config."""
        if not by_epoch:
            raise ValueError('only a by_epoch=True config can be converted to iterations')
        if epoch_length is None or epoch_length < 1:
            raise ValueError(f'epoch_length must be a positive int, got {epoch_length!r}')
        if end is None:
            raise ValueError('end must be given')
        return cls(*args, begin=begin * epoch_length, end=end * epoch_length,
                   epoch_length=epoch_length, by_epoch=False, **kwargs)

    def _get_value(self) -> List[float]:
        epoch = self.last_step // self.epoch_length
        factor = hybrid_factor(epoch, self.num_epochs, self.cyclic_epochs, self.cycle_len)
        return [base * factor for base in self.base_values]


@PARAM_SCHEDULERS.register_module()
class HybridLR(LRSchedulerMixin, HybridParamScheduler):
    """Hybrid (cyclic-then-linear) learning-rate schedule of EdgeNets.

    Config example (100 epochs, 61 cyclic)::

        param_scheduler = dict(type='mmdice.HybridLR', cyclic_epochs=61,
                               begin=0, end=100, by_epoch=True)

    See :class:`HybridParamScheduler` for the arguments.
    """
