"""tools/model_converters/reparameterize_model.py: the deploy checkpoint loads
strictly into the deploy config and predicts as the trained model."""
import importlib.util
import os.path as osp

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from mmdice.apis import build_model_from_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'dicenet', 'dicenet-s1.0_8xb64_in1k.py')
DEPLOY_CONFIG = osp.join(REPO, 'configs', 'dicenet', 'deploy', 'dicenet-s1.0-deploy_in1k.py')


def load_tool():
    path = osp.join(REPO, 'tools', 'model_converters', 'reparameterize_model.py')
    spec = importlib.util.spec_from_file_location('reparameterize_model', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_deploy_checkpoint_loads_into_deploy_config(tmp_path):
    from mmengine.runner import load_checkpoint
    torch.manual_seed(0)
    trained = build_model_from_config(CONFIG)
    with torch.no_grad():
        for module in trained.modules():
            if isinstance(module, _BatchNorm):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.3, 0.3)
    checkpoint = tmp_path / 'trained.pth'
    torch.save({'state_dict': trained.state_dict()}, checkpoint)
    out = tmp_path / 'deploy' / 'deploy.pth'
    tool = load_tool()
    assert tool.main([CONFIG, str(checkpoint), str(out)]) == 0

    deployed = build_model_from_config(DEPLOY_CONFIG)
    assert deployed.backbone.deploy
    load_checkpoint(deployed, str(out), map_location='cpu', strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = trained(x, mode='tensor')
        actual = deployed(x, mode='tensor')
    assert ((actual - expected).abs().max() / expected.abs().max()).item() < 1e-4
    assert tool.main([CONFIG, str(tmp_path / 'missing.pth'), str(out)]) == 1


def test_tool_names_the_cfg_options_of_every_converted_module(tmp_path, capsys):
    """A segmentor's decode head converts too; the printed options load the result."""
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint
    config = osp.join(REPO, 'configs', 'dicenet_seg', 'dicenet-s0.5_1xb16-20e_shapes-64x64.py')
    torch.manual_seed(0)
    checkpoint = tmp_path / 'trained.pth'
    torch.save({'state_dict': build_model_from_config(config).state_dict()}, checkpoint)
    out = tmp_path / 'deploy.pth'
    assert load_tool().main([config, str(checkpoint), str(out)]) == 0
    printed = capsys.readouterr().out
    options = ['model.backbone.deploy=True', 'model.decode_head.deploy=True']
    assert printed.rstrip().endswith('--cfg-options ' + ' '.join(options))
    cfg = Config.fromfile(config)
    cfg.merge_from_dict({option.split('=')[0]: True for option in options})
    load_checkpoint(build_model_from_config(cfg), str(out), map_location='cpu', strict=True)
