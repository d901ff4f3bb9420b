"""mmdice.apis.build_model_from_config and TensorModeWrapper."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmdice.apis import TensorModeWrapper, build_model_from_config
from mmdice.models import switch_to_deploy
from mmdice.utils import InputFileError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'dicenet', 'dicenet-s0.5_1xb32_shapes-64px.py')


def test_builds_from_a_path_or_a_config_in_eval_mode():
    torch.manual_seed(0)
    from_path = build_model_from_config(CONFIG)
    from_config = build_model_from_config(Config.fromfile(CONFIG))
    assert not from_path.training and not from_config.training
    assert type(from_path).__name__ == 'ImageClassifier'
    assert from_path.state_dict().keys() == from_config.state_dict().keys()
    with pytest.raises(TypeError, match='config must be a config path or an mmengine Config'):
        build_model_from_config(dict(model=dict(type='ImageClassifier')))
    with pytest.raises(InputFileError, match='does not exist'):
        build_model_from_config(osp.join(REPO, 'missing_config.py'))


def test_checkpoint_loads_strictly_and_deploy_converts_after_loading(tmp_path):
    torch.manual_seed(0)
    trained = build_model_from_config(CONFIG)
    with torch.no_grad():
        for param in trained.parameters():
            param.uniform_(-0.5, 0.5)
    checkpoint = str(tmp_path / 'trained.pth')
    torch.save({'state_dict': trained.state_dict()}, checkpoint)
    loaded = build_model_from_config(CONFIG, checkpoint)
    assert all(torch.equal(value, trained.state_dict()[key])
               for key, value in loaded.state_dict().items())
    deployed = build_model_from_config(CONFIG, checkpoint, deploy=True)
    expected = switch_to_deploy(copy.deepcopy(trained))
    assert deployed.backbone.deploy
    assert deployed.state_dict().keys() == expected.state_dict().keys()
    assert all(torch.equal(value, expected.state_dict()[key])
               for key, value in deployed.state_dict().items())
    state = trained.state_dict()
    state.pop(next(iter(state)))
    torch.save({'state_dict': state}, checkpoint)
    with pytest.raises(RuntimeError, match='missing keys'):
        build_model_from_config(CONFIG, checkpoint)


def test_tensor_mode_wrapper_returns_the_raw_outputs():
    torch.manual_seed(0)
    model = build_model_from_config(CONFIG)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(TensorModeWrapper(model)(x), model(x, mode='tensor'))
