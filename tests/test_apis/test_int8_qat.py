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
    """Deploy-form shapes classifier (random weights, seed 0) and 4 of its
    prepared inputs (generated shapes images)."""
    import os.path as osp

    from mmengine.config import Config

    from mmdice.testing.shapes import generate_shapes_classification
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    config = Config.fromfile(osp.join(repo, CLS_CONFIG))
    root = tmp_path_factory.mktemp('qat')
    generate_shapes_classification(str(root), num_images=4, image_size=64, val_fraction=0.25)
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


def test_qat_fine_tunes_and_converts_to_an_int8_ir(classifier):
    """Two fine-tuning steps (gradients through NNCF's fake quantizers and the
    deploy form's reference ops), then an OpenVINO model with FakeQuantize
    nodes, its output named as the raw export names it, whose logits keep
    fp32's top-1 class and stay close to fp32 (the same bounds as the
    post-training tool test)."""
    from mmdice.apis.int8_qat import quantize_aware_training
    module, inputs = classifier
    with torch.no_grad():
        want = torch.cat([module(x) for x in inputs]).numpy()
    lines = []
    converted = quantize_aware_training(module, inputs, steps=2, batch_size=1, log=lines.append)
    assert [line.split(':')[0] for line in lines] == ['QAT step 1/2', 'QAT step 2/2']
    assert 'FakeQuantize' in {op.get_type_name() for op in converted.get_ops()}
    assert [output.get_any_name() for output in converted.outputs] == ['logits']
    compiled = compile_int8(converted, threads=2, precision='f32')
    got = np.concatenate([compiled(x.numpy())[compiled.outputs[0]] for x in inputs])
    assert got.shape == want.shape
    assert (got.argmax(1) == want.argmax(1)).mean() >= 0.75
    assert np.abs(got - want).mean() / (want.max() - want.min()) <= 0.1


@pytest.mark.parametrize('options,match', [
    (dict(steps=-1), 'steps'), (dict(batch_size=0), 'batch_size'),
    (dict(preset='fast'), 'preset'), (dict(range_estimator='max'), 'range_estimator'),
    (dict(overflow_fix='all'), 'overflow_fix')])
def test_qat_rejects_bad_settings(classifier, options, match):
    from mmdice.apis.int8_qat import quantize_aware_training
    module, inputs = classifier
    with pytest.raises(ValueError, match=match):
        quantize_aware_training(module, inputs, log=None, **options)


def test_post_training_quantization_rejects_a_bad_overflow_fix():
    from mmdice.apis.quantize import OVERFLOW_FIXES, quantize_model
    assert OVERFLOW_FIXES[0] == 'first_layer_only'
    with pytest.raises(ValueError, match='overflow_fix'):
        quantize_model(None, [], overflow_fix='all')
