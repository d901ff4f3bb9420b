"""DiCENet's classifier for multi-label classification (paper Table 7, MS-COCO)."""
from mmpretrain.models.heads import MultiLabelClsHead

from mmdice.registry import MODELS
from .dice_cls_head import DiCEClassifierMixin


@MODELS.register_module()
class DiCEMultiLabelClsHead(DiCEClassifierMixin, MultiLabelClsHead):
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
        init_cfg: initialisation; default as ``DiCEClsHead``.
        **kwargs: ``loss`` (default sigmoid cross-entropy), ``thr`` (score
            threshold of a positive prediction; 0.5 when neither ``thr`` nor
            ``topk`` is given) and ``topk`` (positives per image when ``thr``
            is None) of :class:`MultiLabelClsHead`.
    """
