"""DiCENet's classifier for multi-label classification (paper Table 7, MS-COCO)."""
from typing import Dict, Optional

from mmpretrain.models.heads import MultiLabelClsHead

from mmdice.registry import MODELS
from .dice_cls_head import DiCEClsHead, add_dice_classifier_layers


@MODELS.register_module()
class DiCEMultiLabelClsHead(MultiLabelClsHead):
    """:class:`DiCEClsHead` (grouped FC -> dropout -> FC) with a sigmoid per class.

    The layers and their state-dict names equal ``DiCEClsHead``'s; training
    uses binary cross-entropy on the logits (EdgeNets ``BCEWithLogitsLoss``),
    prediction thresholds the sigmoid scores (``thr``) or keeps the ``topk``.

    Args:
        num_classes: number of classes K.
        in_channels: pooled feature channels ch4.
        mid_channels: grouped-FC width ch5.
        groups: groups of the grouped FC.
        dropout_ratio: dropout probability (0.1 for s <= 1, 0.2 above).
        loss: loss config; default sigmoid cross-entropy.
        thr: score threshold of a positive prediction (0.5 when neither
            ``thr`` nor ``topk`` is given).
        topk: number of positives per image when ``thr`` is None.
        init_cfg: initialisation; default as ``DiCEClsHead``.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 mid_channels: int = 1024,
                 groups: int = 4,
                 dropout_ratio: float = 0.1,
                 loss: Dict = dict(type='CrossEntropyLoss', use_sigmoid=True),
                 thr: Optional[float] = None,
                 topk: Optional[int] = None,
                 init_cfg: Optional[dict] = dict(
                     type='Kaiming', layer=['Conv2d', 'Linear'], mode='fan_out',
                     nonlinearity='relu', distribution='normal', bias=0)):
        super().__init__(loss=loss, thr=thr, topk=topk, init_cfg=init_cfg)
        add_dice_classifier_layers(self, num_classes, in_channels, mid_channels, groups,
                                   dropout_ratio)

    pre_logits = DiCEClsHead.pre_logits
    forward = DiCEClsHead.forward
