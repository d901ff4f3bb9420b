"""Fixtures of the whole suite: mmengine's loggers on open streams, small
generated shapes datasets and end-to-end exports of the shapes SSD and
segmentor (random weights, saved as checkpoints), made once per session
because an export takes about a minute."""
import logging
import os.path as osp
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SSD_SHAPES_CONFIG = osp.join(REPO, 'configs', 'ssd', 'dicenet-s0.5_ssd300_shapes.py')
SEG_SHAPES_CONFIG = osp.join(REPO, 'configs', 'dicenet_seg',
                             'dicenet-s0.5_1xb16-20e_shapes-64x64.py')


def _export(config, shape, folder, name):
    """(checkpoint, .onnx) of ``config``'s model with random weights (seed 0,
    the model's own initialisation; a detector's class logits scaled up so that
    its scores spread): the training-form checkpoint and the end-to-end export
    of its deploy form."""
    pytest.importorskip('onnxruntime')
    pytest.importorskip('onnxscript')
    from mmdice.apis import build_model_from_config, deploy_module, export_onnx
    torch.manual_seed(0)
    model = build_model_from_config(config)
    model.init_weights()
    head = getattr(model, 'bbox_head', None)
    if head is not None:  # spread the class scores: near-equal ones make NMS order-dependent
        with torch.no_grad():
            for branch in head.cls_convs:
                branch[-1].weight.mul_(20)
    checkpoint = str(folder / f'{name}.pth')
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    deployed = build_model_from_config(config, checkpoint, deploy=True)
    example = torch.randn(*shape)
    module, names = deploy_module(deployed, example)
    path = str(folder / f'{name}.onnx')
    export_onnx(module, example, path, output_names=names)
    return checkpoint, path


@pytest.fixture(scope='session')
def ssd_shapes_export(tmp_path_factory):
    """(config, checkpoint, end-to-end .onnx) of the shapes SSD300 (s=0.5)."""
    return (SSD_SHAPES_CONFIG,
            *_export(SSD_SHAPES_CONFIG, (1, 3, 300, 300), tmp_path_factory.mktemp('ssd'), 'ssd'))


@pytest.fixture(scope='session')
def seg_shapes_export(tmp_path_factory):
    """(config, checkpoint, end-to-end .onnx) of the shapes segmentor (s=0.5, 64 x 64)."""
    return (SEG_SHAPES_CONFIG,
            *_export(SEG_SHAPES_CONFIG, (1, 3, 64, 64), tmp_path_factory.mktemp('seg'), 'seg'))


@pytest.fixture(scope='session')
def shapes_detection(tmp_path_factory):
    """A shapes detection set of 8 images of 96 px (6 train, 2 val)."""
    from mmdice.testing.shapes import generate_shapes_detection
    root = tmp_path_factory.mktemp('shapes_detection')
    generate_shapes_detection(str(root), num_images=8, image_size=96)
    return str(root)


@pytest.fixture(scope='session')
def shapes_segmentation(tmp_path_factory):
    """A shapes segmentation set of 8 images of 64 px (6 train, 2 val)."""
    from mmdice.testing.shapes import generate_shapes_segmentation
    root = tmp_path_factory.mktemp('shapes_segmentation')
    generate_shapes_segmentation(str(root), num_images=8, image_size=64)
    return str(root)

@pytest.fixture(autouse=True)
def mmengine_loggers_on_open_streams():
    """Reset the console handlers of mmengine's loggers before each test.

    An ``MMLogger`` lives for the whole session (mmengine keeps every instance)
    and its console handler keeps the ``sys.stdout`` of the moment it was
    created: pytest's capture stream of an earlier test, closed since. Logging
    to it then prints ``--- Logging error ---`` tracebacks on stderr, which
    breaks tests that read stderr, depending on which tests ran before. Each
    such handler is pointed at the current ``sys.stdout``.
    """
    logging_module = sys.modules.get('mmengine.logging')
    if logging_module is not None:
        for logger in logging_module.MMLogger._instance_dict.values():
            for handler in logger.handlers:
                if type(handler) is logging.StreamHandler and \
                        getattr(handler.stream, 'closed', False):
                    handler.stream = sys.stdout  # setStream would flush the closed one
    yield
