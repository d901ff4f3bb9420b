"""DiCEBottleneck: the residual unit of the ResNet with DiCE units (DiCENet Sec. 3.4)."""
from typing import Optional, Sequence, Union

from mmengine.model import BaseModule, Sequential
from torch import Tensor, nn

from mmdice.registry import MODELS
from ..deploy import DeployMixin
from .activation import build_act
from .dice_unit import DiCEUnit
from .first_layer import build_first_layer
from .norm_act import ConvNormAct
from .recompute import forward_with_cp


@MODELS.register_module()
class DiCEBottleneck(DeployMixin, BaseModule):
    """ResNet bottleneck as a point-wise layer followed by a separable
    convolution or a DiCE unit, with a residual connection.

    The paper's ResNet bottleneck (its 3x3 standard conv replaced by a
    depth-wise one) is a point-wise conv followed by a separable convolution;
    the DiCE variant replaces the separable convolution by a DiCE unit. Here
    the bottleneck has equal widths, so that the unit keeps the channel count
    C (which the SE fusion needs):

    * ``first``: 1x1 conv C_in -> C + norm + act, or with
      ``first_fusion='dimfuse'`` a :class:`DimFuse` without local fusion
      (grouped 3x3 conv scaled by an SE-style gate; the paper's Table 3);
    * ``unit``: ``DiCEUnit(C, C, build_size, stride=stride, spatial=spatial,
      fusion=fusion)``; depth-wise + point-wise is the separable convolution;
    * ``shortcut``: identity when C_in == C and stride 1, otherwise
      (2x2 stride-2 average pooling, ceil mode, when stride 2) + 1x1 conv
      C_in -> C + norm, no activation;
    * output: ``act(unit(first(x)) + shortcut(x))``.

    Args:
        in_channels: input channels C_in.
        out_channels: width C of the block (first layer, unit and output).
        build_size: (Hm, Wm) or an int, the *output* (post-stride) feature
            size the unit is built for.
        stride: 1 or 2, the unit's stride.
        spatial: spatial layer of the unit, ``'dimconv'`` or ``'depthwise'``.
        fusion: fusion layer of the unit, ``'dimfuse'``, ``'pointwise'``,
            ``'se'`` or ``'pointwise_se'``.
        first_fusion: first layer, ``'pointwise'`` or ``'dimfuse'``.
        norm_cfg: normalisation config.
        act_cfg: activation config (PReLU gets one slope per channel).
        with_cp: recompute the block in backward (torch.utils.checkpoint) to
            save memory when training.
        init_cfg: initialisation config.

    Shapes: (N, C_in, H, W) -> (N, C, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, in_channels: int, out_channels: int,
                 build_size: Union[int, Sequence[int]], stride: int = 1,
                 spatial: str = 'dimconv', fusion: str = 'dimfuse',
                 first_fusion: str = 'pointwise',
                 norm_cfg: dict = dict(type='BN', eps=1e-5),
                 act_cfg: dict = dict(type='PReLU'), with_cp: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if stride not in (1, 2) or isinstance(stride, bool):
            raise ValueError(f'stride must be 1 or 2, got {stride!r}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.first_fusion = first_fusion
        self.with_cp = with_cp
        self.deploy = False
        self.first = build_first_layer(in_channels, out_channels, first_fusion, norm_cfg,
                                       act_cfg)
        self.unit = DiCEUnit(out_channels, out_channels, build_size, stride=stride,
                             spatial=spatial, fusion=fusion, norm_cfg=norm_cfg,
                             act_cfg=act_cfg)
        if in_channels == out_channels and stride == 1:
            self.shortcut = nn.Identity()
        else:
            shortcut = [ConvNormAct(in_channels, out_channels, 1, norm_cfg=norm_cfg,
                                    act_cfg=None)]
            if stride == 2:
                shortcut.insert(0, nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False))
            self.shortcut = Sequential(*shortcut)
        self.act = build_act(act_cfg, out_channels)

    def switch_to_deploy(self) -> None:
        """Convert ``first``, the shortcut's conv and the unit, in place. Exact
        in eval mode, inference only, idempotent."""
        if self.deploy:
            return
        self.first.switch_to_deploy()
        if isinstance(self.shortcut, Sequential):
            self.shortcut[-1].switch_to_deploy()
        self.unit.switch_to_deploy()
        self.deploy = True

    def _inner_forward(self, x: Tensor) -> Tensor:
        return self.unit(self.first(x)) + self.shortcut(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(forward_with_cp(self, self._inner_forward, x))
