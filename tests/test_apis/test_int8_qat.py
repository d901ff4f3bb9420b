"""mmdice.apis.int8_qat: quantization-aware fine-tuning distilled from the fp32
model, on the small shapes classifier (random weights, generated images), and
mmdice.ops.extension.reference_graph, which makes the deploy form trainable."""
import numpy as np
import pytest
import torch

pytest.importorskip('openvino')
pytest.importorskip('nncf')

from mmdice.apis import TensorModeWrapper, build_model_from_config  # noqa: E402
from mmdice.apis.quantize import calibration_inputs, compile_int8  # noqa: E402
from mmdice.ops import EXT_AVAILABLE  # noqa: E402
from mmdice.ops.extension import graph_capture, reference_graph  # noqa: E402

CLS_CONFIG = 'configs/dicenet/dicenet-s0.5_1xb32_shapes-64px.py'


@pytest.fixture(scope='module')
def classifier(tmp_path_factory):
    """Deploy-form shapes classifier (random weights, seed 0) and 8 of its
    prepared inputs (generated shapes images)."""
    import os.path as osp

    from mmengine.config import Config

    from mmdice.testing.shapes import generate_shapes_classification
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    config = Config.fromfile(osp.join(repo, CLS_CONFIG))
    root = tmp_path_factory.mktemp('qat')
    generate_shapes_classification(str(root), num_images=8, image_size=64, val_fraction=0.25)
    images = sorted(str(path) for path in root.rglob('*.png'))
    torch.manual_seed(0)
    model = build_model_from_config(config)
    checkpoint = root / 'cls.pth'
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    model = build_model_from_config(config, str(checkpoint), deploy=True)
    inputs = calibration_inputs(config, model, images, progress=False)
    return TensorModeWrapper(model).eval(), inputs


@pytest.mark.skipif(not EXT_AVAILABLE, reason='mmdice._ext is not built')
def test_reference_graph_trains_the_deploy_form(classifier):
    module, inputs = classifier
    x = torch.cat(inputs[:2])
    with torch.no_grad():
        fused = module(x)
    with pytest.raises(RuntimeError, match='deploy form'):
        module(x).sum().backward()  # the fused ops have no autograd
    assert not graph_capture().tracing
    with reference_graph():
        assert graph_capture().tracing and graph_capture().compiling
        output = module(x)
        output.sum().backward()
    assert not graph_capture().tracing
    torch.testing.assert_close(output.detach(), fused, atol=1e-5, rtol=1e-5)
    grads = [p.grad for name, p in module.named_parameters() if 'weight_depth' in name]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)
    module.zero_grad(set_to_none=True)


def test_qat_fine_tuning_reduces_the_int8_error(classifier):
    """The int8 OpenVINO model after fine-tuning (the default learning rate) is
    closer to fp32 (mean squared logit error on the calibration images) than
    the one of the same NNCF set-up without fine-tuning; both hold int8
    FakeQuantize nodes."""
    from mmdice.apis.int8_qat import quantize_aware_training
    module, inputs = classifier
    with torch.no_grad():
        want = torch.cat([module(x) for x in inputs]).numpy()
    errors = {}
    for steps in (0, 30):
        converted = quantize_aware_training(module, inputs, steps=steps, batch_size=4,
                                            log=None)
        assert 'FakeQuantize' in {op.get_type_name() for op in converted.get_ops()}
        compiled = compile_int8(converted, threads=2, precision='f32')
        got = np.concatenate([compiled(x.numpy())[compiled.outputs[0]] for x in inputs])
        assert got.shape == want.shape
        errors[steps] = float(((got - want)**2).mean())
    print(f'int8 mean squared logit error: {errors}')
    assert errors[30] < errors[0]


@pytest.mark.parametrize('options,match', [
    (dict(steps=-1), 'steps'), (dict(batch_size=0), 'batch_size'),
    (dict(preset='fast'), 'preset'), (dict(range_estimator='max'), 'range_estimator')])
def test_qat_rejects_bad_settings(classifier, options, match):
    from mmdice.apis.int8_qat import quantize_aware_training
    module, inputs = classifier
    with pytest.raises(ValueError, match=match):
        quantize_aware_training(module, inputs, log=None, **options)
