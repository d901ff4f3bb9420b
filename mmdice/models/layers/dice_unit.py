"""DiCE unit: DimConv followed by DimFuse (DiCENet Sec. 3), and its ablations (Sec. 5.2)."""
import numbers
from typing import Optional, Sequence, Union

import torch
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdice.ops import DimConv2d, DimConvFuse2d
from mmdice.registry import MODELS
from ..deploy import DeployMixin
from ..utils import activation_slopes, fold_batch_norm
from .activation import act_cfg_for, build_act
from .channel_shuffle import shuffled_concat
from .dim_fuse import DimFuse
from .fusion import PointwiseFusion, SEFusion
from .norm_act import ConvNormAct, norm_act
from .recompute import forward_with_cp

#: Spatial layers of a DiCE unit: DimConv or a depth-wise convolution.
SPATIAL_LAYERS = ('dimconv', 'depthwise')
#: Fusions of a DiCE unit: DimFuse, point-wise conv, SE gate, point-wise conv + SE gate.
FUSIONS = ('dimfuse', 'pointwise', 'se', 'pointwise_se')


@MODELS.register_module()
class DiCEUnit(DeployMixin, BaseModule):
    """Dimension-wise convolution (DimConv) + dimension-wise fusion (DimFuse).

    ``dim_conv`` (:class:`~mmdice.ops.DimConv2d`) -> ``dim_norm`` + ``dim_act``
    over its 3C channels -> ``dim_fuse`` (:class:`DimFuse`).

    Channel order: DimConv's output is interleaved, channel ``3c + g`` holding
    branch g (0 depth, 1 height, 2 width) of input channel c. The reference
    (EdgeNets ``DICE``) concatenates [D, H, W] (its channel ``g*C + c``), applies
    BN + PReLU over that concat and only then shuffles into the interleaved
    order. ``dim_norm`` and ``dim_act`` act on our interleaved channels, so
    their parameters and running statistics are the reference's ``br_act``
    ones re-indexed: **our channel 3c + g == reference channel g*C + c**
    (``ours = ref.view(3, C).t().reshape(3C)``). All other weights map
    one-to-one: ``dim_conv.weight_depth/height/width`` <- ``conv_channel/
    conv_height/conv_width``, ``dim_fuse.local_fusion`` <- ``weight_avg_layer``,
    ``dim_fuse.spatial_fusion`` <- ``proj_layer``, ``dim_fuse.gate.reduce/expand``
    <- ``linear_comb_layer.1/3``.

    The two halves can be swapped for the layers they replace (the paper's
    ablations, Sec. 5.2, Tables 2 and 3), e.g. ``spatial='depthwise',
    fusion='pointwise'`` is a separable convolution:

    ========================= ===================================================
    ``spatial='dimconv'``     ``dim_conv`` + ``dim_norm`` + ``dim_act`` (3C channels)
    ``spatial='depthwise'``   ``depthwise``: k x k depth-wise conv + norm + act (C)
    ``fusion='dimfuse'``      ``dim_fuse``: :class:`DimFuse` (no local fusion after
                              a depth-wise conv)
    ``fusion='pointwise'``    ``fusion``: :class:`PointwiseFusion`, 1x1 conv + norm
                              + act over all the spatial layer's channels
    ``fusion='se'``           ``fusion``: :class:`SEFusion` (C' must equal C)
    ``fusion='pointwise_se'`` ``fusion``: :class:`PointwiseFusion` with an SE gate
    ========================= ===================================================

    Args:
        in_channels: input channels C.
        out_channels: output channels C'.
        build_size: (Hm, Wm) or an int: the (output) feature size the height-
            and width-wise kernels are built for. Other run-time sizes are
            resampled per branch (bilinear up, adaptive average pooling down).
            Unused by a depth-wise spatial layer, which takes any size.
        kernel_size: kernel size of the spatial layer.
        dilation: DimConv dilation, int or (depth, height, width); the
            reference's ``dilation=[d0, d1, d2]`` is (depth, width, height).
            A depth-wise spatial layer takes an int.
        stride: 1 or 2. At 2 a DimConv is preceded by a 3x3 stride-2 average
            pooling (zero padding counted, as the reference's strided unit); a
            depth-wise conv strides itself.
        spatial: the spatial layer, one of :data:`SPATIAL_LAYERS`.
        fusion: the fusion, one of :data:`FUSIONS`.
        gate_reduction: hidden-channel reduction of the SE-style gates.
        norm_cfg: normalisation config.
        act_cfg: activation config (PReLU gets one slope per channel).
        with_cp: recompute the unit in backward (torch.utils.checkpoint) to
            save memory when training.
        deploy: build the deploy (inference) form directly, as
            :meth:`switch_to_deploy` leaves it.
        init_cfg: initialisation config; by default convolutions (DimConv
            included) get Kaiming-normal fan_out, norms weight 1 and bias 0.

    Deploy form (:meth:`switch_to_deploy`): with a DimConv and a fusion that
    starts with the local fusion (``'dimfuse'``, ``'se'``), ``dim_conv``,
    ``dim_norm``, ``dim_act`` and the local fusion become one
    :class:`~mmdice.ops.DimConvFuse2d` ``dim_conv_fuse`` (C -> C, the fused
    ``mmdice::dice_fuse`` op), which never materialises the 3C channels; the
    other BatchNorms that follow a conv are folded into it.

    Shapes: (N, C, H, W) -> (N, C', ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, in_channels: int, out_channels: int,
                 build_size: Union[int, Sequence[int]], kernel_size: int = 3,
                 dilation: Union[int, Sequence[int]] = 1, stride: int = 1,
                 spatial: str = 'dimconv', fusion: str = 'dimfuse', gate_reduction: int = 4,
                 norm_cfg: dict = dict(type='BN', eps=1e-5),
                 act_cfg: dict = dict(type='PReLU'), with_cp: bool = False,
                 deploy: bool = False, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if spatial not in SPATIAL_LAYERS:
            raise ValueError(f'spatial must be one of {SPATIAL_LAYERS}, got {spatial!r}')
        if fusion not in FUSIONS:
            raise ValueError(f'fusion must be one of {FUSIONS}, got {fusion!r}')
        if fusion == 'se' and out_channels != in_channels:
            raise ValueError(f"fusion='se' keeps the channel count: out_channels must equal "
                             f'in_channels ({in_channels}), got {out_channels}')
        if stride not in (1, 2):
            raise ValueError(f'stride must be 1 or 2, got {stride!r}')
        self.deploy = False
        self.with_cp = with_cp
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.spatial = spatial
        self.fusion_type = fusion
        with_dim_conv = spatial == 'dimconv'
        self.downsample = (nn.AvgPool2d(3, stride=2, padding=1)
                           if with_dim_conv and stride == 2 else None)
        if with_dim_conv:
            self.dim_conv = DimConv2d(in_channels, build_size, kernel_size, dilation)
            self.build_size = self.dim_conv.build_size
            self.dim_norm = build_norm_layer(norm_cfg, 3 * in_channels)[1]
            self.dim_act = build_act(act_cfg, 3 * in_channels)
        else:
            if not isinstance(dilation, numbers.Integral) or dilation < 1:
                raise ValueError(f"dilation of spatial='depthwise' must be a positive int, "
                                 f'got {dilation!r}')
            self.build_size = None
            self.depthwise = ConvNormAct(
                in_channels, in_channels, kernel_size, stride=stride,
                padding=dilation * (kernel_size - 1) // 2, dilation=dilation,
                groups=in_channels, norm_cfg=norm_cfg, act_cfg=act_cfg_for(act_cfg, in_channels))
        spatial_channels = 3 * in_channels if with_dim_conv else in_channels
        if fusion == 'dimfuse':
            self.dim_fuse = DimFuse(in_channels, out_channels, with_local_fusion=with_dim_conv,
                                    gate_reduction=gate_reduction, norm_cfg=norm_cfg,
                                    act_cfg=act_cfg)
        elif fusion == 'se':
            self.fusion = SEFusion(in_channels, with_local_fusion=with_dim_conv,
                                   gate_reduction=gate_reduction, norm_cfg=norm_cfg,
                                   act_cfg=act_cfg)
        else:
            self.fusion = PointwiseFusion(spatial_channels, out_channels,
                                          with_gate=fusion == 'pointwise_se',
                                          gate_reduction=gate_reduction, norm_cfg=norm_cfg,
                                          act_cfg=act_cfg)
        if deploy:
            self.switch_to_deploy()

    @property
    def fuse_layer(self) -> nn.Module:
        """The fusion module: ``dim_fuse`` or ``fusion``."""
        return self.dim_fuse if self.fusion_type == 'dimfuse' else self.fusion

    def init_weights(self) -> None:
        """Kaiming-normal (fan_out) DimConv weights, as the reference's convs.

        Skipped when this unit's ``init_cfg`` loads a pretrained checkpoint.
        """
        super().init_weights()
        init_types = [cfg.get('type') for cfg in _as_list(self.init_cfg)]
        if self.spatial == 'dimconv' and 'Pretrained' not in init_types:
            dim_conv = self.dim_conv_fuse if hasattr(self, 'dim_conv_fuse') else self.dim_conv
            for weight in (dim_conv.weight_depth, dim_conv.weight_height, dim_conv.weight_width):
                nn.init.kaiming_normal_(weight, mode='fan_out', nonlinearity='relu')

    def _fusion_input(self, x: Tensor) -> Tensor:
        """The spatial layer's activated output (3C or C channels); once the
        fused op has taken the local fusion, the C locally fused channels."""
        if self.downsample is not None:
            x = self.downsample(x)
        if self.spatial == 'depthwise':
            return self.depthwise(x)
        if hasattr(self, 'dim_conv_fuse'):
            self.refuse_gradient(x, self.dim_conv_fuse.weight_depth)
            return self.dim_conv_fuse(x)
        return norm_act(self.dim_conv(x), self.dim_norm, self.dim_act)

    def forward(self, x: Tensor) -> Tensor:
        return forward_with_cp(self, self._forward, x)

    def _forward(self, x: Tensor) -> Tensor:
        return self.fuse_layer(self._fusion_input(x))

    def shuffled_with(self, left: Tensor, x: Tensor) -> Tensor:
        """``channel_shuffle(cat(left, self(x)), 2)``, its end computed in one
        pass (:meth:`DimFuse.shuffled_with`) with DimFuse; ``left`` is (N, C', H, W)."""
        if self.fusion_type != 'dimfuse':
            return shuffled_concat((left, self(x)), 2)
        return self.dim_fuse.shuffled_with(left, self._fusion_input(x))

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Convert to the deploy form in place (see the class docstring).

        Exact in eval mode (running statistics, each BatchNorm's own eps);
        the deploy form is for inference only. A no-op once deployed.
        """
        if self.deploy:
            return
        if self.spatial == 'depthwise':
            self.depthwise.switch_to_deploy()
        elif getattr(self.fuse_layer, 'local_fusion', None) is not None:
            self._fuse_dim_conv()
        self.fuse_layer.switch_to_deploy()
        self.deploy = True

    def _fuse_dim_conv(self) -> None:
        """Replace DimConv .. local fusion by one :class:`DimConvFuse2d`."""
        channels = self.in_channels
        fuse_layer = self.fuse_layer
        local_fusion = fuse_layer.local_fusion
        if local_fusion.order != ('conv', 'norm', 'act'):
            raise ValueError(f'the deploy form needs the local fusion in the order '
                             f"('conv', 'norm', 'act'), got {local_fusion.order}")
        branch_scale, branch_bias = fold_batch_norm(self.dim_norm)
        fuse_weight = local_fusion.conv.weight.double().reshape(channels, 3)
        fuse_bias = (local_fusion.conv.bias.double() if local_fusion.conv.bias is not None
                     else torch.zeros(channels, dtype=torch.float64))
        if local_fusion.with_norm:
            scale, shift = fold_batch_norm(local_fusion.norm)
            fuse_weight = fuse_weight * scale[:, None]
            fuse_bias = fuse_bias * scale + shift
        out_activation = local_fusion.activate if local_fusion.with_activation else None
        dim_conv = self.dim_conv
        fused = DimConvFuse2d(channels, dim_conv.build_size, dim_conv.kernel_size,
                              dim_conv.dilation).to(dim_conv.weight_depth)
        values = dict(
            weight_depth=dim_conv.weight_depth, weight_height=dim_conv.weight_height,
            weight_width=dim_conv.weight_width, branch_scale=branch_scale.reshape(channels, 3),
            branch_bias=branch_bias.reshape(channels, 3),
            branch_slope=activation_slopes(self.dim_act, 3 * channels).reshape(channels, 3),
            fuse_weight=fuse_weight, fuse_bias=fuse_bias,
            out_slope=activation_slopes(out_activation, channels))
        for name, value in values.items():
            getattr(fused, name).copy_(value)
        del self.dim_conv, self.dim_norm, self.dim_act
        fuse_layer.local_fusion = None
        self.dim_conv_fuse = fused


def _as_list(init_cfg: Union[None, dict, Sequence[dict]]) -> list:
    if init_cfg is None:
        return []
    if isinstance(init_cfg, dict):
        return [init_cfg]
    return list(init_cfg)
