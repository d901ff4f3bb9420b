"""tools/deployment/quantize.py: post-training int8 (OpenVINO + NNCF) end to end
on the small shapes classifier with generated calibration images, and its
bad-input errors (one ``error:`` line, exit status 1, no output file)."""
import importlib.util
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip('openvino')
pytest.importorskip('nncf')
pytest.importorskip('onnxscript')

from mmdice.apis import TensorModeWrapper, build_model_from_config  # noqa: E402
from mmdice.apis.quantize import (QuantizationError, calibration_inputs,  # noqa: E402
                                  compile_int8, list_calibration_images, quantize_onnx,
                                  run_openvino)
from mmdice.ops import EXT_AVAILABLE  # noqa: E402
from mmdice.utils.tool_inputs import InputFileError  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLS_CONFIG = osp.join(REPO, 'configs', 'dicenet', 'dicenet-s0.5_1xb32_shapes-64px.py')
NUM_IMAGES = 8
#: int8 against fp32 on the calibration images: the fraction of images whose
#: top-1 class is kept, and the mean absolute logit difference relative to the
#: spread (max - min) of the fp32 logits.
MIN_TOP1_AGREEMENT = 0.75
MAX_RELATIVE_MEAN_ERROR = 0.1


def load_tool():
    path = osp.join(REPO, 'tools', 'deployment', 'quantize.py')
    spec = importlib.util.spec_from_file_location('quantize_tool', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    """A random-weight checkpoint (PyTorch's default init: spread-out logits)
    and a folder of generated shapes images."""
    from mmdice.testing.shapes import generate_shapes_classification
    root = tmp_path_factory.mktemp('quantize')
    generate_shapes_classification(str(root / 'shapes'), num_images=NUM_IMAGES, image_size=64,
                                   val_fraction=0.25)
    calib = root / 'calib'
    calib.mkdir()
    for folder, _, files in os.walk(root / 'shapes'):
        for name in files:
            shutil.copy(osp.join(folder, name), calib / name)
    torch.manual_seed(0)
    model = build_model_from_config(CLS_CONFIG)
    checkpoint = root / 'cls.pth'
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    return root, str(checkpoint), str(calib)


@pytest.mark.skipif(not EXT_AVAILABLE, reason='mmdice._ext is not built')
def test_quantize_end_to_end(inputs, capsys):
    root, checkpoint, calib = inputs
    output = str(root / 'out' / 'cls-int8.xml')
    assert load_tool().main([CLS_CONFIG, checkpoint, '--calib-dir', calib,
                             '--output-file', output]) == 0
    assert sorted(os.listdir(root / 'out')) == ['cls-int8.bin', 'cls-int8.xml']
    assert 'of the predictions differ' in capsys.readouterr().out  # end to end: top-1 classes
    model = build_model_from_config(CLS_CONFIG, checkpoint, deploy=True)
    module = TensorModeWrapper(model)
    import openvino as ov
    # int8 quantization happened; by default not on the DiCE group convolutions, products,
    # additions and concatenations
    quantized = quantized_op_types(output)
    assert 'Convolution' in quantized
    assert not quantized & {'GroupConvolution', 'Add', 'Multiply', 'Concat'}
    compiled = compile_int8(output, threads=2, precision='f32')
    from mmengine.config import Config
    tensors = calibration_inputs(Config.fromfile(CLS_CONFIG), model,
                                 list_calibration_images(calib), progress=False)
    assert len(tensors) == NUM_IMAGES
    agree, errors = [], []
    for x in tensors + [torch.cat(tensors[:3])]:  # batch 1 and a batch of 3
        with torch.no_grad():
            want = module(x).numpy()
        got = run_openvino(compiled, x.numpy())[0]
        assert got.shape == want.shape
        agree += list(got.argmax(1) == want.argmax(1))
        errors.append(np.abs(got - want).mean() / (want.max() - want.min()))
    print(f'top-1 agreement {np.mean(agree):.3f}, relative mean error {max(errors):.4f}')
    assert np.mean(agree) >= MIN_TOP1_AGREEMENT
    assert max(errors) <= MAX_RELATIVE_MEAN_ERROR


def quantized_ops(xml):
    """The ops of the IR ``xml`` that read a FakeQuantize output."""
    import openvino as ov
    return [target.get_node()
            for op in ov.Core().read_model(xml).get_ordered_ops()
            if op.get_type_name() == 'FakeQuantize'
            for target in op.output(0).get_target_inputs()]


def quantized_op_types(xml):
    """Types of the ops of the IR ``xml`` that read a FakeQuantize output."""
    return {op.get_type_name() for op in quantized_ops(xml)}


@pytest.mark.skipif(not EXT_AVAILABLE, reason='mmdice._ext is not built')
def test_ignore_types_alone_quantizes_every_op_type(inputs):
    root, checkpoint, calib = inputs
    output = str(root / 'all' / 'cls-int8.xml')
    assert load_tool().main([CLS_CONFIG, checkpoint, '--calib-dir', calib, '--calib-num', '2',
                             '--output-file', output, '--ignore-types', '--preset', 'mixed',
                             '--no-check']) == 0
    assert {'Convolution', 'GroupConvolution', 'Add'} <= quantized_op_types(output)


def run_tool_error(argv, capsys):
    status = load_tool().main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert err[-1].startswith('error: ')
    return err[-1]


def test_missing_calibration_folder(inputs, tmp_path, capsys):
    _, checkpoint, _ = inputs
    output = tmp_path / 'o.xml'
    line = run_tool_error([CLS_CONFIG, checkpoint, '--calib-dir', str(tmp_path / 'nope'),
                           '--output-file', str(output)], capsys)
    assert 'calibration folder' in line and 'does not exist' in line
    assert os.listdir(tmp_path) == []


def test_empty_calibration_folder(inputs, tmp_path, capsys):
    _, checkpoint, _ = inputs
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'notes.txt').write_text('no images here')
    line = run_tool_error([CLS_CONFIG, checkpoint, '--calib-dir', str(empty),
                           '--output-file', str(tmp_path / 'o.xml')], capsys)
    assert str(empty) in line and 'has no images' in line
    assert sorted(os.listdir(tmp_path)) == ['empty']


def test_unreadable_image(inputs, tmp_path, capsys):
    _, checkpoint, calib = inputs
    folder = tmp_path / 'calib'
    shutil.copytree(calib, folder)
    (folder / 'broken.png').write_bytes(b'not a png at all')
    line = run_tool_error([CLS_CONFIG, checkpoint, '--calib-dir', str(folder),
                           '--output-file', str(tmp_path / 'o.xml')], capsys)
    assert 'cannot read calibration image' in line and 'broken.png' in line
    assert sorted(os.listdir(tmp_path)) == ['calib']


def test_model_that_cannot_be_exported(inputs, tmp_path, capsys, monkeypatch):
    _, checkpoint, calib = inputs
    tool = load_tool()

    def fail(*args, **kwargs):
        raise RuntimeError('unsupported operator aten::something')

    monkeypatch.setattr('mmdice.apis.onnx_export.export_onnx', fail)
    status = tool.main([CLS_CONFIG, checkpoint, '--calib-dir', calib, '--calib-num', '2',
                        '--output-file', str(tmp_path / 'o.xml')])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert status == 1
    assert line.startswith('error: cannot export the model of') and 'aten::something' in line
    assert os.listdir(tmp_path) == []


def test_model_the_runtime_cannot_read(tmp_path):
    bad = tmp_path / 'model.onnx'
    bad.write_bytes(b'\x08\x07garbage')
    with pytest.raises(QuantizationError, match='OpenVINO cannot read'):
        quantize_onnx(str(bad), [torch.zeros(1, 3, 8, 8)], str(tmp_path / 'out' / 'q.xml'))
    assert sorted(os.listdir(tmp_path)) == ['model.onnx']


def test_calibration_num_and_order(tmp_path):
    for name in ('b.png', 'a.jpg', 'c.txt'):
        (tmp_path / name).write_bytes(b'')
    assert list_calibration_images(str(tmp_path)) == [str(tmp_path / 'a.jpg'),
                                                      str(tmp_path / 'b.png')]
    assert list_calibration_images(str(tmp_path), 1) == [str(tmp_path / 'a.jpg')]
    with pytest.raises(InputFileError, match='is not a folder'):
        list_calibration_images(str(tmp_path / 'a.jpg'))


def postprocessing_quantized(xml, onnx_model):
    """Ops of the int8 IR ``xml`` that read a FakeQuantize output and belong to the
    post-processing of the fp32 end-to-end graph ``onnx_model``."""
    from mmdice.apis.quantize import postprocessing_ops, read_onnx
    after_network = set(postprocessing_ops(read_onnx(onnx_model)))
    return sorted(name for name in (op.get_friendly_name() for op in quantized_ops(xml))
                  if name in after_network)


@pytest.mark.skipif(not EXT_AVAILABLE, reason='mmdice._ext is not built')
def test_end2end_segmentor_is_the_default_and_keeps_argmax_float(seg_shapes_export,
                                                                  shapes_segmentation, tmp_path,
                                                                  capsys):
    from mmdice.apis import DeployedModel
    config, checkpoint, onnx_model = seg_shapes_export
    output = str(tmp_path / 'seg-int8.xml')
    calib = osp.join(shapes_segmentation, 'JPEGImages')
    assert load_tool().main([config, checkpoint, '--calib-dir', calib, '--calib-num', '4',
                             '--output-file', output]) == 0
    out = capsys.readouterr().out
    assert 'end-to-end segmentor' in out and 'groups: first_conv, postprocessing' in out
    assert 'of the predictions differ' in out
    assert postprocessing_quantized(output, onnx_model) == []
    compiled = compile_int8(output, precision='f32')
    assert [o.get_any_name() for o in compiled.outputs] == ['seg_map']
    model = build_model_from_config(config, checkpoint, deploy=True)
    from mmengine.config import Config
    x = torch.cat(calibration_inputs(Config.fromfile(config), model,
                                     list_calibration_images(calib, 2), progress=False))
    seg_map = run_openvino(compiled, x.numpy())[0]
    assert seg_map.shape == (2, 64, 64) and np.issubdtype(seg_map.dtype, np.integer)
    assert set(np.unique(seg_map)) <= set(range(4))
    DeployedModel(output, config, 'openvino')  # the deployed model takes it as a seg map


@pytest.mark.skipif(not EXT_AVAILABLE, reason='mmdice._ext is not built')
def test_end2end_detector_outputs_dets_and_labels_after_float_nms(ssd_shapes_export,
                                                                  shapes_detection, tmp_path):
    from mmengine.config import Config

    from mmdice.apis import PAD_LABEL
    config, checkpoint, onnx_model = ssd_shapes_export
    output = str(tmp_path / 'ssd-int8.xml')
    calib = osp.join(shapes_detection, 'images')
    assert load_tool().main([config, checkpoint, '--calib-dir', calib, '--calib-num', '2',
                             '--output-file', output, '--no-check']) == 0
    assert postprocessing_quantized(output, onnx_model) == []
    compiled = compile_int8(output, precision='f32')
    assert [o.get_any_name() for o in compiled.outputs] == ['dets', 'labels']
    x = np.random.default_rng(0).standard_normal((2, 3, 300, 300)).astype(np.float32)
    dets, labels = run_openvino(compiled, x)
    max_per_img = Config.fromfile(config).model.test_cfg.max_per_img
    assert dets.shape == (2, max_per_img, 5) and labels.shape == (2, max_per_img)
    for image_dets, image_labels in zip(dets, labels):
        kept = image_labels != PAD_LABEL
        assert kept.any() and set(image_labels[kept]) <= {0, 1, 2}
        assert (image_dets[~kept] == 0).all()
        scores = image_dets[kept, 4]
        assert (np.diff(scores) <= 0).all() and (scores > 0).all()
        boxes = image_dets[kept, :4]
        assert (boxes[:, 2:] >= boxes[:, :2]).all() and boxes.min() >= 0 and boxes.max() <= 300


def test_raw_segmentor_keeps_the_logits(seg_shapes_export, shapes_segmentation, tmp_path):
    config, checkpoint, _ = seg_shapes_export
    output = str(tmp_path / 'seg-raw-int8.xml')
    assert load_tool().main([config, checkpoint, '--raw', '--calib-dir',
                             osp.join(shapes_segmentation, 'JPEGImages'), '--calib-num', '2',
                             '--output-file', output, '--no-check']) == 0
    compiled = compile_int8(output, precision='f32')
    assert [o.get_any_name() for o in compiled.outputs] == ['seg_logits']
    assert compiled.outputs[0].get_partial_shape()[1].get_length() == 4


def test_accuracy_control_of_an_end2end_detector_is_one_error(ssd_shapes_export,
                                                               shapes_detection, tmp_path,
                                                               capsys):
    config, checkpoint, _ = ssd_shapes_export
    line = run_tool_error([config, checkpoint, '--calib-dir',
                           osp.join(shapes_detection, 'images'), '--accuracy-control', '0.01',
                           '--output-file', str(tmp_path / 'o.xml')], capsys)
    assert '--accuracy-control' in line and '--raw' in line
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(not EXT_AVAILABLE, reason='mmdice._ext is not built')
def test_quantize_aware_training(inputs, capsys):
    """--qat: a few fine-tuning steps, an end-to-end int8 IR (output logits) with
    FakeQuantize nodes whose top-1 classes mostly match fp32 (the tool's own
    check prints the fraction that differs)."""
    root, checkpoint, calib = inputs
    output = str(root / 'qat' / 'cls-int8.xml')
    assert load_tool().main([CLS_CONFIG, checkpoint, '--calib-dir', calib, '--calib-num', '4',
                             '--qat', '--qat-steps', '2', '--qat-batch', '1',
                             '--output-file', output]) == 0
    out = capsys.readouterr().out
    assert 'QAT step 2/2' in out
    assert sorted(os.listdir(root / 'qat')) == ['cls-int8.bin', 'cls-int8.xml']
    import openvino as ov
    assert 'FakeQuantize' in {op.get_type_name() for op in ov.Core().read_model(output).get_ops()}
    compiled = compile_int8(output, precision='f32')
    assert [o.get_any_name() for o in compiled.outputs] == ['logits']
    different = float(out.split('% of the predictions differ')[0].rsplit(' ', 1)[1]) / 100
    assert different <= 1 - MIN_TOP1_AGREEMENT


@pytest.mark.skipif(not EXT_AVAILABLE, reason='mmdice._ext is not built')
def test_quantize_aware_training_end2end_segmentor_keeps_argmax_float(
        seg_shapes_export, shapes_segmentation, tmp_path, capsys):
    """--qat on a segmentor: the end-to-end seg_map graph around the fine-tuned
    network, no FakeQuantize after the network, run by DeployedModel."""
    import openvino as ov

    from mmdice.apis import DeployedModel
    from mmdice.apis.quantize import postprocessing_ops
    config, checkpoint, _ = seg_shapes_export
    output = str(tmp_path / 'seg-qat-int8.xml')
    assert load_tool().main([config, checkpoint, '--calib-dir',
                             osp.join(shapes_segmentation, 'JPEGImages'), '--calib-num', '2',
                             '--qat', '--qat-steps', '1', '--qat-batch', '1',
                             '--output-file', output]) == 0
    out = capsys.readouterr().out
    assert 'end-to-end segmentor' in out and 'of the predictions differ' in out
    int8 = ov.Core().read_model(output)
    types = {op.get_friendly_name(): op.get_type_name() for op in int8.get_ops()}
    assert 'FakeQuantize' in types.values()
    after_network = postprocessing_ops(int8)
    assert after_network and not [name for name in after_network
                                  if types[name] == 'FakeQuantize']
    assert [o.get_any_name() for o in int8.outputs] == ['seg_map']
    DeployedModel(output, config, 'openvino')


def test_quantize_aware_training_of_an_end2end_detector_is_one_error(
        ssd_shapes_export, shapes_detection, tmp_path, capsys):
    config, checkpoint, _ = ssd_shapes_export
    line = run_tool_error([config, checkpoint, '--calib-dir',
                           osp.join(shapes_detection, 'images'), '--qat',
                           '--output-file', str(tmp_path / 'o.xml')], capsys)
    assert '--qat' in line and 'NMS' in line and '--raw' in line
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('extra,match', [
    (['--keep-float', 'dice'], '--qat does not take the post-training options --keep-float'),
    (['--no-fuse-prelu', '--equalize', 'weights'], '--equalize, --no-fuse-prelu'),
    (['--qat-steps', '-1'], '--qat-steps must be >= 0')])
def test_quantize_aware_training_bad_options(inputs, tmp_path, capsys, extra, match):
    _, checkpoint, calib = inputs
    line = run_tool_error([CLS_CONFIG, checkpoint, '--calib-dir', calib, '--qat',
                           '--output-file', str(tmp_path / 'o.xml')] + extra, capsys)
    assert match in line
    assert os.listdir(tmp_path) == []
