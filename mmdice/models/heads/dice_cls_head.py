"""DiCENet's ImageNet classifier as an mmpretrain head."""
from typing import Optional, Sequence, Tuple

import torch
from mmpretrain.models.heads import ClsHead
from torch import Tensor, nn

from mmdice.registry import MODELS

#: Kaiming-normal fan_out on both layers with zero bias, as the reference's 1x1 convs.
DICE_CLASSIFIER_INIT_CFG = dict(type='Kaiming', layer=['Conv2d', 'Linear'], mode='fan_out',
                                nonlinearity='relu', distribution='normal', bias=0)


class DiCEClassifierMixin:
    """The layers of DiCENet's classifier (grouped FC -> dropout -> FC) on an
    mmpretrain head, which it precedes in the bases; the head's own
    arguments pass through ``**kwargs``."""

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 mid_channels: int = 1024,
                 groups: int = 4,
                 dropout_ratio: float = 0.1,
                 init_cfg: Optional[dict] = DICE_CLASSIFIER_INIT_CFG,
                 **kwargs):
        super().__init__(init_cfg=init_cfg, **kwargs)
        if num_classes <= 0:
            raise ValueError(f'num_classes must be a positive int, got {num_classes!r}')
        if in_channels % groups or mid_channels % groups:
            raise ValueError(f'in_channels ({in_channels}) and mid_channels ({mid_channels}) '
                             f'must be divisible by groups ({groups})')
        if not 0 <= dropout_ratio < 1:
            raise ValueError(f'dropout_ratio must be in [0, 1), got {dropout_ratio!r}')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.mid_channels = mid_channels
        self.grouped_fc = nn.Conv2d(in_channels, mid_channels, 1, groups=groups, bias=False)
        self.dropout = nn.Dropout(p=dropout_ratio)
        self.fc = nn.Linear(mid_channels, num_classes)

    def pre_logits(self, feats: Sequence[Tensor]) -> Tensor:
        """Grouped FC of the last feature: (N, ch4[, 1, 1]) -> (N, ch5)."""
        x = feats[-1]
        if x.dim() == 4 and x.shape[2:] != (1, 1):
            raise ValueError('DiCEClsHead expects pooled features (N, C) or (N, C, 1, 1), got '
                             f'{tuple(x.shape)}; add a GlobalAveragePooling neck')
        x = x.reshape(x.shape[0], -1, 1, 1)
        if x.shape[1] != self.in_channels:
            raise ValueError(f'DiCEClsHead was built for in_channels={self.in_channels}, '
                             f'got features with {x.shape[1]} channels')
        return torch.flatten(self.grouped_fc(x), 1)

    def forward(self, feats: Tuple[Tensor]) -> Tensor:
        """Class scores (N, num_classes)."""
        return self.fc(self.dropout(self.pre_logits(feats)))


@MODELS.register_module()
class DiCEClsHead(DiCEClassifierMixin, ClsHead):
    """DiCENet classifier: grouped FC -> dropout -> FC.

    On pooled features (N, ch4) (e.g. from ``GlobalAveragePooling``):
    ``grouped_fc`` 1x1 conv ch4 -> ch5 with ``groups`` groups and no bias (no
    norm or activation after it, as the reference), dropout, then ``fc``
    (``nn.Linear`` ch5 -> num_classes with bias). The reference's last 1x1
    conv weight [K, ch5, 1, 1] loads into ``fc.weight`` as [K, ch5].

    Args:
        num_classes: number of classes K.
        in_channels: pooled feature channels ch4.
        mid_channels: grouped-FC width ch5.
        groups: groups of the grouped FC.
        dropout_ratio: dropout probability (reference: 0.1 for s <= 1, 0.2 above).
        init_cfg: initialisation; default Kaiming-normal fan_out on both
            layers with zero bias, as the reference's 1x1 convs.
        **kwargs: ``loss``, ``topk``, ``cal_acc`` of :class:`ClsHead`.
    """
