"""DiCEClsHead: the DiCENet classifier as an mmpretrain head."""
import math

import pytest
import torch
from mmengine.registry import DefaultScope

pytest.importorskip('mmpretrain')
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS  # noqa: E402
from mmpretrain.structures import DataSample  # noqa: E402

from mmdice.models.heads import DiCEClsHead  # noqa: E402


def test_layers_and_forward():
    head = DiCEClsHead(num_classes=10, in_channels=464, mid_channels=1024, dropout_ratio=0.2)
    assert head.grouped_fc.weight.shape == (1024, 116, 1, 1)
    assert head.grouped_fc.groups == 4 and head.grouped_fc.bias is None
    assert head.fc.weight.shape == (10, 1024) and head.fc.bias.shape == (10, )
    assert head.dropout.p == 0.2
    head.eval()
    feats = torch.randn(3, 464)
    with torch.no_grad():
        scores = head((feats, ))
        pre_logits = head.pre_logits((feats, ))
        expected = torch.nn.functional.linear(pre_logits, head.fc.weight, head.fc.bias)
        assert torch.allclose(scores, expected)
        # pooled (N, C, 1, 1) features are accepted as well
        assert torch.allclose(head((feats[..., None, None], )), scores)
    assert scores.shape == (3, 10) and pre_logits.shape == (3, 1024)
    # the grouped FC really is grouped: group 0 of the output sees only input group 0
    feats_changed = feats.clone()
    feats_changed[:, 116:] += 1
    with torch.no_grad():
        changed = head.pre_logits((feats_changed, ))
    assert torch.equal(changed[:, :256], pre_logits[:, :256])
    assert not torch.allclose(changed[:, 256:], pre_logits[:, 256:])


def test_loss_and_predict():
    head = DiCEClsHead(num_classes=3, in_channels=64, mid_channels=512, topk=(1, ))
    feats = (torch.randn(4, 64), )
    samples = [DataSample().set_gt_label(label) for label in (0, 1, 2, 1)]
    losses = head.loss(feats, samples)
    assert losses['loss'].ndim == 0 and torch.isfinite(losses['loss'])
    losses['loss'].backward()
    assert head.grouped_fc.weight.grad is not None
    head.eval()
    predictions = head.predict(feats)
    assert len(predictions) == 4 and predictions[0].pred_score.shape == (3, )


def test_init_kaiming_fan_out_like_reference_convs():
    torch.manual_seed(0)
    head = DiCEClsHead(num_classes=1000, in_channels=464, mid_channels=1024)
    head.init_weights()
    assert head.grouped_fc.weight.std().item() == pytest.approx(math.sqrt(2 / 1024), rel=0.05)
    assert head.fc.weight.std().item() == pytest.approx(math.sqrt(2 / 1000), rel=0.05)
    assert torch.all(head.fc.bias == 0)


def test_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match='num_classes'):
        DiCEClsHead(num_classes=0, in_channels=64)
    with pytest.raises(ValueError, match='groups'):
        DiCEClsHead(num_classes=3, in_channels=66, mid_channels=512)
    with pytest.raises(ValueError, match='dropout_ratio'):
        DiCEClsHead(num_classes=3, in_channels=64, dropout_ratio=1.5)
    head = DiCEClsHead(num_classes=3, in_channels=64, mid_channels=512)
    with pytest.raises(ValueError, match='GlobalAveragePooling'):
        head((torch.randn(2, 64, 7, 7), ))
    with pytest.raises(ValueError, match='in_channels=64'):
        head((torch.randn(2, 32), ))


def test_image_classifier_train_step():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MMPRETRAIN_MODELS.build(
            dict(
                type='ImageClassifier',
                backbone=dict(type='mmdice.DiCENet', widen_factor=0.1, input_size=64),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(type='mmdice.DiCEClsHead', num_classes=3, in_channels=64,
                          mid_channels=512, dropout_ratio=0.1)))
    model.init_weights()
    inputs = torch.randn(2, 3, 64, 64)
    samples = [DataSample().set_gt_label(0), DataSample().set_gt_label(2)]
    losses = model(inputs, samples, mode='loss')
    losses['loss'].backward()
    assert model.backbone.stem.conv.weight.grad is not None
    model.eval()
    with torch.no_grad():
        predictions = model(inputs, samples, mode='predict')
    assert [p.pred_label.item() in range(3) for p in predictions] == [True, True]
