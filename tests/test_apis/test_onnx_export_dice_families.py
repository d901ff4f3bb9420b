"""ONNX export of the DiCE-unit backbone families (deploy form), checked in onnxruntime."""
import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')

from mmdice.apis import check_onnx, export_onnx  # noqa: E402
from mmdice.models import DiCEMobileNet, DiCENet, DiCEResNet  # noqa: E402


def randomized(model):
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, _BatchNorm):
                module.running_mean.copy_(torch.rand(module.num_features, generator=generator) - .5)
                module.running_var.copy_(torch.rand(module.num_features, generator=generator) + .5)
    return model.eval()


@pytest.mark.parametrize('build', [
    lambda: DiCEMobileNet(0.25, input_size=64),
    lambda: DiCEMobileNet(0.25, input_size=64, spatial='depthwise', fusion='pointwise'),
    lambda: DiCEResNet(0.25, input_size=64, depths=(1, 1, 1, 1), first_fusion='dimfuse'),
    lambda: DiCEResNet(0.25, input_size=64, depths=(1, 1, 1, 1), spatial='dimconv',
                       fusion='pointwise_se'),
    lambda: DiCENet(0.1, input_size=64, spatial='depthwise', fusion='se'),
], ids=['mobilenet-du', 'mobilenet-sc', 'resnet-dimfuse-first', 'resnet-dimconv-pwse',
        'dicenet-dwise-se'])
def test_deploy_form_exports_and_matches_pytorch(tmp_path, build):
    model = randomized(build())
    model.switch_to_deploy()
    x = torch.randn(2, 3, 64, 64)
    path = str(tmp_path / 'backbone.onnx')
    export_onnx(model, x, path)
    outputs, error = check_onnx(path, model, x)
    assert outputs == 1 and error < 1e-4
