"""DiCESSDHead: mmdet's SSDHead that predicts, with unchanged training."""
import pytest
import torch

pytest.importorskip('mmdet')
from mmdet.models.dense_heads import SSDHead  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402
from mmengine.config import ConfigDict  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

from mmdice.models.heads import DiCESSDHead  # noqa: E402

SIZE = 300
IN_CHANNELS = (16, 16, 16, 16, 16, 16)
HEAD = dict(
    num_classes=3,
    in_channels=IN_CHANNELS,
    use_depthwise=True,
    norm_cfg=dict(type='BN'),
    anchor_generator=dict(type='SSDAnchorGenerator', scale_major=False, input_size=SIZE,
                          strides=[8, 16, 32, 64, 100, 300], ratios=[[2, 3]] * 6,
                          min_sizes=[30, 77, 125, 172, 220, 267],
                          max_sizes=[77, 125, 172, 220, 267, 315]),
    bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0] * 4,
                    target_stds=[0.1, 0.1, 0.2, 0.2]),
    train_cfg=ConfigDict(
        assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.45, neg_iou_thr=0.45,
                      min_pos_iou=0., ignore_iof_thr=-1, gt_max_assign_all=False),
        sampler=dict(type='PseudoSampler'), smoothl1_beta=1., allowed_border=-1,
        pos_weight=-1, neg_pos_ratio=3, debug=False),
    test_cfg=ConfigDict(nms_pre=1000, nms=dict(type='nms', iou_threshold=0.45),
                        min_bbox_size=0, score_thr=0.01, max_per_img=200))
SIDES = (38, 19, 10, 5, 3, 1)


def features(batch=2):
    torch.manual_seed(0)
    return tuple(torch.randn(batch, c, s, s) for c, s in zip(IN_CHANNELS, SIDES))


def samples(batch=2):
    out = []
    for _ in range(batch):
        sample = DetDataSample(metainfo=dict(img_shape=(SIZE, SIZE), pad_shape=(SIZE, SIZE),
                                             ori_shape=(SIZE, SIZE), scale_factor=(1., 1.)))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([[10., 20., 120., 150.], [150., 140., 260., 280.]]),
            labels=torch.tensor([0, 2]))
        out.append(sample)
    return out


def heads():
    from mmdet.utils import register_all_modules
    register_all_modules()
    ours, stock = DiCESSDHead(**HEAD), SSDHead(**HEAD)
    stock.load_state_dict(ours.state_dict())
    return ours, stock


def test_stock_head_cannot_predict_ours_can():
    ours, stock = heads()
    ours.eval(), stock.eval()
    with pytest.raises(AttributeError, match='loss_cls'):
        stock.predict(features(), samples())
    with torch.no_grad():
        results = ours.predict(features(), samples(), rescale=True)
    assert len(results) == 2
    for result in results:
        assert result.bboxes.shape[1] == 4 and len(result.bboxes) <= 200
        assert ((result.scores >= 0.01) & (result.scores <= 1)).all()
        assert ((result.labels >= 0) & (result.labels < 3)).all()


def test_training_and_checkpoints_unchanged():
    ours, stock = heads()
    assert ours.state_dict().keys() == stock.state_dict().keys()
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in stock.parameters())
    feats = features()
    ours_losses, stock_losses = ours.loss(feats, samples()), stock.loss(feats, samples())
    for key in ('loss_cls', 'loss_bbox'):
        assert torch.allclose(sum(ours_losses[key]), sum(stock_losses[key]))
    assert sum(stock_losses['loss_cls']) > 0
