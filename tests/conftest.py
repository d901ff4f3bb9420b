"""Fixtures of the whole suite: mmengine's loggers on open streams, small
generated shapes datasets and end-to-end exports of the shapes SSD and
segmentor (random weights, saved as checkpoints), made once per session
because an export takes about a minute; and the shuffled test order of
``--shuffle-seed N`` (or ``MMDICE_TEST_SEED=N``), which checks that no test
depends on what ran before it. Without either the collected order stays."""
import logging
import os
import os.path as osp
import random
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SSD_SHAPES_CONFIG = osp.join(REPO, 'configs', 'ssd', 'dicenet-s0.5_ssd300_shapes.py')
SEG_SHAPES_CONFIG = osp.join(REPO, 'configs', 'dicenet_seg',
                             'dicenet-s0.5_1xb16-20e_shapes-64x64.py')


def pytest_addoption(parser):
    parser.addoption(
        '--shuffle-seed', type=int, default=None, metavar='N',
        help='run the test files in an order shuffled with seed N, and the tests (and test '
        'classes) of each file shuffled too; default: $MMDICE_TEST_SEED, unset: the collected '
        'order')


def shuffle_seed(config):
    """The seed of ``--shuffle-seed`` or ``$MMDICE_TEST_SEED``; None for the collected order."""
    seed = config.getoption('--shuffle-seed')
    if seed is not None:
        return seed
    value = os.environ.get('MMDICE_TEST_SEED', '').strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise pytest.UsageError(f'MMDICE_TEST_SEED must be an int, got {value!r}') from None


def pytest_report_header(config):
    seed = shuffle_seed(config)
    if seed is not None:
        return f'test order: shuffled with seed {seed} (rerun it with --shuffle-seed {seed})'
    return None


def shuffled(groups, rng):
    """The keys of the insertion-ordered dict ``groups`` in ``rng``'s order."""
    keys = list(groups)
    rng.shuffle(keys)
    return keys


def pytest_collection_modifyitems(config, items):
    """With a seed (:func:`shuffle_seed`): the test files in a shuffled order,
    in each the module-level tests and the test classes shuffled, and the tests
    of each class; the tests of one file (one class) stay together, so
    module- and class-scoped fixtures are made once as in the collected order."""
    seed = shuffle_seed(config)
    if seed is None:
        return
    rng = random.Random(seed)
    files = {}
    for item in items:
        parent = item.getparent(pytest.Class) or item.getparent(pytest.Module) or item.parent
        files.setdefault(str(item.path), {}).setdefault(parent.nodeid, []).append(item)
    order = []
    for path in shuffled(files, rng):
        for parent in shuffled(files[path], rng):
            tests = files[path][parent]
            rng.shuffle(tests)
            order += tests
    items[:] = order


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
