"""Every config in configs/ssd builds, computes its loss and predicts on the CPU, and the
stock ones follow the design (priors, FLOPs and parameter targets of Table 6)."""
import glob
import os.path as osp

import pytest
import torch

pytest.importorskip('mmdet')
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import mmdice.models  # noqa: E402,F401
from mmdice.utils import count_complexity  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO, 'configs', 'ssd')
CONFIGS = sorted(osp.basename(p) for p in glob.glob(osp.join(CONFIG_DIR, '*.py')))
STOCK = ('dicenet_ssd300_voc0712.py', 'dicenet_ssd512_voc0712.py', 'dicenet_ssd300_coco.py',
         'dicenet_ssd512_coco.py')
# paper Table 6 GFLOPs; our models must be within 15 % (measured values in README.md)
PAPER_GFLOPS = {'dicenet_ssd300_voc0712.py': 0.7, 'dicenet_ssd512_voc0712.py': 2.0,
                'dicenet_ssd300_coco.py': 0.9, 'dicenet_ssd512_coco.py': 2.6}
# measured with tools/analysis_tools/get_flops.py (paper convention, multiply-adds)
MEASURED_MFLOPS = {'dicenet_ssd300_voc0712.py': 731.85, 'dicenet_ssd512_voc0712.py': 1992.06,
                   'dicenet_ssd300_coco.py': 991.84, 'dicenet_ssd512_coco.py': 2717.04}
MEASURED_PARAMS = {'dicenet_ssd300_voc0712.py': 4501438, 'dicenet_ssd512_voc0712.py': 4541908,
                   'dicenet_ssd300_coco.py': 5434558, 'dicenet_ssd512_coco.py': 5521468}


def input_size(cfg):
    return [step for step in cfg.test_dataloader.dataset.pipeline
            if step['type'] == 'Resize'][0]['scale']


def build(name):
    from mmdet.registry import MODELS
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    return cfg, model


def batch(model, size, num_images=1):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    height, width = size
    generator = torch.Generator().manual_seed(0)
    data_samples = []
    for _ in range(num_images):
        sample = DetDataSample(metainfo=dict(
            img_shape=(height, width), pad_shape=(height, width), ori_shape=(height, width),
            scale_factor=(1., 1.), batch_input_shape=(height, width)))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([[0.1 * width, 0.2 * height, 0.5 * width, 0.6 * height]]),
            labels=torch.tensor([0]))
        data_samples.append(sample)
    images = torch.rand(num_images, 3, height, width, generator=generator)
    return images, data_samples


def test_expected_configs_exist():
    assert set(STOCK) <= set(CONFIGS)
    assert 'dicenet-s0.5_ssd300_shapes.py' in CONFIGS
    assert 'ssdlite_dicenet-s2.4-scratch_8xb24-600e_coco.py' in CONFIGS


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds_trains_a_step_and_predicts(name):
    cfg, model = build(name)
    size = input_size(cfg)
    # two images: BatchNorm needs more than one value per channel on the 1x1 map
    images, data_samples = batch(model, size, num_images=2)
    model.train()
    losses = model.loss(images, data_samples)
    total = sum(sum(value) if isinstance(value, list) else value for value in losses.values())
    assert torch.isfinite(total) and total > 0
    stem = model.backbone.stem.conv.weight
    before = stem.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    optimizer.zero_grad()
    total.backward()
    optimizer.step()
    assert stem.grad is not None and not torch.equal(stem.detach(), before)
    model.eval()
    with torch.no_grad():
        results = model.predict(images, data_samples)
    num_classes = cfg.model.bbox_head.num_classes
    for result in results:
        instances = result.pred_instances
        assert instances.bboxes.shape[1:] == (4, )
        assert ((instances.scores >= 0) & (instances.scores <= 1)).all()
        assert ((instances.labels >= 0) & (instances.labels < num_classes)).all()


@pytest.mark.parametrize('name', STOCK)
def test_stock_config_follows_design(name):
    cfg, model = build(name)
    size = input_size(cfg)[0]
    assert cfg.model.backbone.widen_factor == 2.4 and cfg.model.backbone.input_size == 224
    levels = 6 if size == 300 else 7
    generator = model.bbox_head.prior_generator
    assert generator.num_base_priors == [6] * levels
    # the reference's rule: int(linspace(ceil(0.1 S), ceil(1.05 S), levels + 1))
    sizes = torch.linspace(-(-size // 10), -(-105 * size // 100), levels + 1).long().tolist()
    assert list(cfg.model.bbox_head.anchor_generator.min_sizes) == sizes[:-1]
    assert list(cfg.model.bbox_head.anchor_generator.max_sizes) == sizes[1:]
    assert tuple(model.bbox_head.bbox_coder.stds) == (0.1, 0.1, 0.2, 0.2)
    num_classes = 80 if 'coco' in name else 20
    assert cfg.model.bbox_head.num_classes == num_classes
    metric = cfg.val_evaluator
    assert metric.type == ('CocoMetric' if 'coco' in name else 'VOCMetric')
    if metric.type == 'VOCMetric':
        assert metric.eval_mode == '11points'
    assert cfg.auto_scale_lr.base_batch_size > 0
    if size == 512:
        assert cfg.load_from.endswith('.pth') and cfg.model.backbone.norm_eval


@pytest.mark.parametrize('name', STOCK)
def test_flops_and_params_meet_table6(name):
    cfg, model = build(name)
    size = input_size(cfg)
    model.eval()

    class TensorForward(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, inputs):
            return self.model(inputs, mode='tensor')

    with torch.no_grad():
        counts = count_complexity(TensorForward(), (torch.randn(1, 3, *size), ))
    assert counts['paper_flops'] / 1e6 == pytest.approx(MEASURED_MFLOPS[name], abs=0.01)
    assert counts['params'] == MEASURED_PARAMS[name]
    assert abs(counts['paper_flops'] / 1e9 / PAPER_GFLOPS[name] - 1) <= 0.15
    if 'coco' in name:
        assert counts['params'] <= 6e6


def test_backbone_loads_every_weight_of_an_imagenet_classifier(tmp_path):
    """init_cfg=Pretrained loads non-strictly and only logs mismatches: prove that every
    backbone parameter and buffer of the detector comes from the classifier."""
    pytest.importorskip('mmpretrain')
    from mmpretrain.registry import MODELS as CLS_MODELS
    classifier_cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'dicenet', 'dicenet-s2.4_8xb64_in1k.py'))
    init_default_scope('mmpretrain')
    classifier = CLS_MODELS.build(classifier_cfg.model)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for tensor in classifier.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
    checkpoint = tmp_path / 'dicenet-s2.4_in1k.pth'
    torch.save(dict(state_dict=classifier.state_dict(), meta=dict(epoch=150)), str(checkpoint))

    from mmdet.registry import MODELS
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'dicenet_ssd300_coco.py'))
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained', checkpoint=cfg.pretrained,
                                               prefix='backbone.')
    cfg.model.backbone.init_cfg.checkpoint = str(checkpoint)
    init_default_scope('mmdet')
    detector = MODELS.build(cfg.model)
    detector.init_weights()
    expected = {key[len('backbone.'):]: value for key, value in classifier.state_dict().items()
                if key.startswith('backbone.')}
    loaded = detector.backbone.state_dict()
    assert loaded.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(loaded[key], value), key
