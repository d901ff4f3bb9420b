"""The EdgeNets hybrid (cyclic-then-linear) learning-rate schedule."""
import pytest
import torch
from mmengine.optim import OptimWrapper

from mmdice.engine import HybridLR
from mmdice.engine.schedulers.hybrid_lr import hybrid_factor
from mmdice.registry import PARAM_SCHEDULERS


def edgenets_hybrid(base_lr, clr_max, max_epochs, cycle_len=5):
    """EdgeNets utilities/lr_scheduler.py HybirdLR, re-derived as a closed form."""
    lrs = []
    for epoch in range(max_epochs):
        if epoch == 0:
            lr = base_lr
        elif epoch < clr_max:
            lr = round(base_lr * cycle_len - ((epoch - 1) % cycle_len) * base_lr, 5)
        else:
            linear_epochs = max_epochs - clr_max + 1
            lr = base_lr - base_lr * (epoch - clr_max + 1) / linear_epochs
        lrs.append(round(lr, 6))
    return lrs


def make_optimizer(lr=0.009):
    backbone, head = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    return torch.optim.SGD([{'params': backbone.parameters()},
                            {'params': head.parameters(), 'lr': lr * 10}], lr=lr, momentum=0.9)


def run_epochs(scheduler, optimizer, epochs):
    lrs = []
    for _ in range(epochs):
        lrs.append([group['lr'] for group in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return lrs


def test_spec_numbers():
    optimizer = make_optimizer()
    scheduler = PARAM_SCHEDULERS.build(
        dict(type='mmdice.HybridLR', cyclic_epochs=61, begin=0, end=100, by_epoch=True),
        default_args=dict(optimizer=OptimWrapper(optimizer)))
    assert isinstance(scheduler, HybridLR)
    lrs = run_epochs(scheduler, optimizer, 100)
    backbone = [lr[0] for lr in lrs]
    spec = {0: 0.009, 1: 0.045, 2: 0.036, 3: 0.027, 4: 0.018, 5: 0.009, 6: 0.045, 60: 0.009,
            61: 0.008775, 99: 0.000225}
    for epoch, lr in spec.items():
        assert backbone[epoch] == pytest.approx(lr, rel=1e-9, abs=1e-12), epoch
    assert backbone == pytest.approx(edgenets_hybrid(0.009, 61, 100), abs=1e-9)
    # the decoder group keeps its x10 multiplier at every epoch
    assert [lr[1] for lr in lrs] == pytest.approx([10 * lr for lr in backbone], rel=1e-9)


def test_other_cycle_length_and_begin_offset():
    optimizer = make_optimizer(0.1)
    scheduler = HybridLR(optimizer, cyclic_epochs=61, begin=0, end=120)
    backbone = [lr[0] for lr in run_epochs(scheduler, optimizer, 120)]
    # EdgeNets rounds to 6 decimals
    assert backbone == pytest.approx(edgenets_hybrid(0.1, 61, 120), abs=6e-7)
    assert backbone[61] == pytest.approx(0.1 * (1 - 1 / 60))

    optimizer = make_optimizer(0.01)
    scheduler = HybridLR(optimizer, cyclic_epochs=4, cycle_len=3, begin=2, end=10)
    backbone = [lr[0] for lr in run_epochs(scheduler, optimizer, 10)]
    expected = [0.01, 0.01] + [0.01 * hybrid_factor(e, 8, 4, 3) for e in range(8)]
    assert backbone == pytest.approx(expected)
    assert expected[2:7] == pytest.approx([0.01, 0.03, 0.02, 0.01, 0.01 * (1 - 1 / 5)])


def test_convert_to_iter_based_changes_once_per_epoch():
    epoch_length = 3
    optimizer = make_optimizer()
    scheduler = PARAM_SCHEDULERS.build(
        dict(type='mmdice.HybridLR', cyclic_epochs=61, begin=0, end=100, by_epoch=True,
             convert_to_iter_based=True),
        default_args=dict(optimizer=OptimWrapper(optimizer), epoch_length=epoch_length))
    assert scheduler.by_epoch is False and scheduler.end == 100 * epoch_length
    lrs = [lr[0] for lr in run_epochs(scheduler, optimizer, 100 * epoch_length)]
    per_epoch = edgenets_hybrid(0.009, 61, 100)
    assert lrs == pytest.approx([lr for lr in per_epoch for _ in range(epoch_length)], abs=1e-9)


def test_invalid_arguments():
    optimizer = make_optimizer()
    with pytest.raises(ValueError, match='end'):
        HybridLR(optimizer, cyclic_epochs=61)
    with pytest.raises(ValueError, match='cyclic_epochs'):
        HybridLR(optimizer, cyclic_epochs=101, end=100)
    with pytest.raises(ValueError, match='cycle_len'):
        HybridLR(optimizer, cyclic_epochs=61, cycle_len=0, end=100)
    with pytest.raises(ValueError, match='epoch_length'):
        HybridLR(optimizer, cyclic_epochs=61, end=100, epoch_length=2)
