"""The DiCENet segmentation decoder as an mmseg decode head.

Reproduces EdgeNets ``model/segmentation/dicenet.py`` (everything after the
encoder): an EfficientPyrPool at each of the strides 16, 8, 4 and 2, joined by
x2 bilinear up-sampling (``align_corners=True``) plus an EfficientPWConv
projection of the encoder map of that stride, followed by BN + PReLU.
"""
from typing import List, Sequence, Tuple

from mmcv.cnn import build_norm_layer
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from torch import Tensor, nn
from torch.nn import functional as F

from mmdice.models.deploy import DeployMixin
from mmdice.models.layers.activation import build_act
from mmdice.models.layers.efficient_pw_conv import EfficientPWConv
from mmdice.models.layers.efficient_pyr_pool import EfficientPyrPool
from mmdice.models.layers.norm_act import norm_act
from mmdice.registry import MODELS


@MODELS.register_module()
class DiCESegHead(DeployMixin, BaseDecodeHead):
    """DiCENet segmentation head (bottom-up decoder with pyramid pooling).

    Takes the encoder maps at strides (2, 4, 8, 16) (``in_index`` selects them
    from the backbone outputs, finest first) and returns logits at stride 2;
    mmseg resizes them to the input in ``predict``/``loss`` (bilinear,
    ``align_corners=True`` as in the reference).

    Decoding, coarse to fine (``i`` indexes the module lists):

    * ``pyramid_pools[0]``: EfficientPyrPool(stride-16 map -> p -> d0);
    * for i = 0, 1, 2: up-sample x2 to the next finer encoder map, add
      ``skip_projs[i]`` (EfficientPWConv of that map -> d_i), ``merge_norms[i]``
      + ``merge_acts[i]``, then ``pyramid_pools[i + 1]``
      (EfficientPyrPool(d_i -> p -> d_{i+1}));
    * the last pyramid pool stops after its 3x3 merge (p channels) and
      ``conv_seg`` (1x1 p -> classes, with bias) is its final 1x1 conv, so the
      head has no unused parameters. ``dropout_ratio`` defaults to 0 (the
      reference has no dropout there).

    Args:
        in_channels: channels of the four selected encoder maps, finest first
            (DiCENet: ch0, ch1, ch2, ch3).
        channels: pyramid projection width p; the reference uses
            min(num_classes // 2, 16).
        decoder_channels: (d0, d1, d2) output widths of the first three
            pyramid pools; the reference uses (64, 48, 32).
        pyramid_scales: EfficientPyrPool scales.
        in_index: indices of the four maps in the backbone outputs.
        input_transform: must be ``'multiple_select'``.
        norm_cfg: norm layer config of the decoder.
        act_cfg: activation config (PReLU gets one slope per channel).
        align_corners: ``align_corners`` of the final resize; True reproduces
            the reference.
        dropout_ratio: dropout before ``conv_seg``.
        deploy: build the deploy (inference) form directly, as
            :meth:`switch_to_deploy` leaves it.
        **kwargs: other :class:`BaseDecodeHead` arguments (``num_classes``,
            ``loss_decode``, ``ignore_index``, ...).

    The x2 up-sampling resizes to the finer encoder map's size, which is
    exactly x2 whenever the input sides are multiples of 16 (the reference's
    requirement); other sizes run as well.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 channels: int,
                 decoder_channels: Sequence[int] = (64, 48, 32),
                 pyramid_scales: Sequence[float] = (2.0, 1.5, 1.0, 0.5, 0.1),
                 in_index: Sequence[int] = (0, 1, 2, 3),
                 input_transform: str = 'multiple_select',
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 act_cfg: dict = dict(type='PReLU'),
                 align_corners: bool = True,
                 dropout_ratio: float = 0.,
                 deploy: bool = False,
                 init_cfg=(dict(type='Kaiming', layer='Conv2d', mode='fan_out'),
                           dict(type='Constant', val=1, layer=['_BatchNorm'])),
                 **kwargs):
        if not isinstance(in_channels, (list, tuple)) or len(in_channels) != 4:
            raise ValueError('in_channels must be the channels of four encoder maps at '
                             f'strides (2, 4, 8, 16), got {in_channels!r}')
        if not isinstance(decoder_channels, (list, tuple)) or len(decoder_channels) != 3:
            raise ValueError('decoder_channels must be three ints (d0, d1, d2), '
                             f'got {decoder_channels!r}')
        if input_transform != 'multiple_select':
            raise ValueError("input_transform must be 'multiple_select', "
                             f'got {input_transform!r}')
        super().__init__(
            in_channels,
            channels,
            in_index=list(in_index),
            input_transform=input_transform,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
            align_corners=align_corners,
            dropout_ratio=dropout_ratio,
            init_cfg=list(init_cfg) if isinstance(init_cfg, tuple) else init_cfg,
            **kwargs)
        self.decoder_channels = tuple(decoder_channels)
        skip_channels = list(reversed(self.in_channels[:3]))  # strides 8, 4, 2
        pool_in = [self.in_channels[3], *self.decoder_channels]
        pool_out = [*self.decoder_channels, None]
        self.pyramid_pools = nn.ModuleList(
            EfficientPyrPool(c_in, channels, c_out, pyramid_scales, norm_cfg, act_cfg)
            for c_in, c_out in zip(pool_in, pool_out))
        self.skip_projs = nn.ModuleList(
            EfficientPWConv(c_skip, c_dec, norm_cfg, act_cfg)
            for c_skip, c_dec in zip(skip_channels, self.decoder_channels))
        self.merge_norms = nn.ModuleList(
            build_norm_layer(norm_cfg, c)[1] for c in self.decoder_channels)
        self.merge_acts = nn.ModuleList(
            build_act(act_cfg, c) for c in self.decoder_channels)
        self.deploy = False
        if deploy:
            self.switch_to_deploy()

    def switch_to_deploy(self) -> None:
        """Fold the BatchNorms of the pyramid pools' and skip projections'
        convs into them, in place (``merge_norms`` follow an addition and
        stay). Exact in eval mode, inference only, idempotent."""
        for module in (*self.pyramid_pools, *self.skip_projs):
            module.switch_to_deploy()
        self.deploy = True

    def forward(self, inputs: Tuple[Tensor]) -> Tensor:
        """Encoder maps -> logits (N, num_classes, H/2, W/2)."""
        feats: List[Tensor] = self._transform_inputs(inputs)
        x = self.pyramid_pools[0](feats[3])
        for i, skip in enumerate(reversed(feats[:3])):
            x = F.interpolate(x, size=skip.shape[2:], mode='bilinear', align_corners=True)
            x = x + self.skip_projs[i](skip)
            x = norm_act(x, self.merge_norms[i], self.merge_acts[i])
            x = self.pyramid_pools[i + 1](x)
        return self.cls_seg(x)
