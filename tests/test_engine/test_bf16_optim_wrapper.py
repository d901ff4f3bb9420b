"""mmdice.BF16OptimWrapper: bfloat16 autocast in optim_context, float32 parameters."""
import pytest
import torch
from torch import nn

pytest.importorskip('mmengine')
from mmengine.registry import OPTIM_WRAPPERS  # noqa: E402

from mmdice.engine import BF16OptimWrapper  # noqa: E402


def test_builds_from_mmengine_registry_with_scope_prefix():
    model = nn.Linear(4, 2)
    wrapper = OPTIM_WRAPPERS.build(
        dict(type='mmdice.BF16OptimWrapper',
             optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    assert type(wrapper) is BF16OptimWrapper


def test_optim_context_autocasts_to_bfloat16_and_updates_float32_parameters():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    before = [p.detach().clone() for p in model.parameters()]
    wrapper = BF16OptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    device_type = 'cuda' if torch.cuda.is_available() else 'cpu'
    model.to(device_type)
    with wrapper.optim_context(model):
        assert torch.is_autocast_enabled(device_type)
        assert torch.get_autocast_dtype(device_type) == torch.bfloat16
        output = model(torch.randn(2, 3, 8, 8, device=device_type))
        assert output.dtype == torch.bfloat16
        loss = output.float().square().mean()
    assert not torch.is_autocast_enabled(device_type)
    wrapper.update_params(loss)
    for old, new in zip(before, model.parameters()):
        assert new.dtype == torch.float32
        assert not torch.equal(old, new.detach().cpu())
