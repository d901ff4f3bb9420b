"""switch_to_deploy on a DiCENet-SSD detector: the raw head outputs and the final
detections equal the training form's in eval mode."""
import copy
import os.path as osp

import pytest
import torch

pytest.importorskip('mmdet')
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

from mmdice.models import switch_to_deploy  # noqa: E402
from mmdice.models.layers import DiCEUnit  # noqa: E402

from test_deploy import RELATIVE_TOLERANCE, randomize_statistics, relative_error  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'ssd', 'dicenet-s0.5_ssd300_shapes.py')


def test_ssd300_deploy_matches_training_form():
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    cfg = Config.fromfile(CONFIG)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    trained = MODELS.build(cfg.model)
    trained.init_weights()
    randomize_statistics(trained)
    deployed = switch_to_deploy(copy.deepcopy(trained)).eval()
    assert deployed.backbone.deploy
    assert all(unit.deploy for unit in deployed.modules() if isinstance(unit, DiCEUnit))
    images = torch.rand(2, 3, 300, 300, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, actual = trained(images, mode='tensor'), deployed(images, mode='tensor')
        for expected_maps, actual_maps in zip(expected, actual):
            for want, got in zip(expected_maps, actual_maps):
                assert relative_error(got, want) < RELATIVE_TOLERANCE
        samples = [DetDataSample(metainfo=dict(img_shape=(300, 300), ori_shape=(300, 300),
                                               scale_factor=(1., 1.))) for _ in range(2)]
        want = trained.predict(images, copy.deepcopy(samples))
        got = deployed.predict(images, copy.deepcopy(samples))
    for want_sample, got_sample in zip(want, got):
        want_top, got_top = want_sample.pred_instances[:20], got_sample.pred_instances[:20]
        assert torch.equal(want_top.labels, got_top.labels)
        assert torch.allclose(want_top.scores, got_top.scores, atol=1e-4)
        assert torch.allclose(want_top.bboxes, got_top.bboxes, atol=1e-2)


def test_ssd300_deploy_config_loads_the_converted_state_dict():
    from mmdice.apis import build_model_from_config, deploy_cfg_options
    torch.manual_seed(0)
    trained = randomize_statistics(build_model_from_config(CONFIG))
    deployed = switch_to_deploy(copy.deepcopy(trained))
    options = deploy_cfg_options(deployed)
    assert options == ['model.backbone.deploy=True', 'model.neck.deploy=True',
                       'model.bbox_head.deploy=True']
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict({option.split('=')[0]: True for option in options})
    built = build_model_from_config(cfg)
    assert built.neck.deploy and built.bbox_head.deploy
    built.load_state_dict(deployed.state_dict(), strict=True)
    images = torch.rand(1, 3, 300, 300, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, actual = trained(images, mode='tensor'), built(images, mode='tensor')
    for expected_maps, actual_maps in zip(expected, actual):
        for want, got in zip(expected_maps, actual_maps):
            assert relative_error(got, want) < RELATIVE_TOLERANCE
