"""DiCE unit: DimConv followed by DimFuse (DiCENet Sec. 3)."""
from typing import Optional, Sequence, Union

import torch
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdice.ops import DimConv2d, DimConvFuse2d
from mmdice.registry import MODELS
from ..deploy import DeployMixin
from ..utils import activation_slopes, fold_batch_norm
from .activation import build_act
from .dim_fuse import DimFuse
from .norm_act import norm_act


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

    Args:
        in_channels: input channels C.
        out_channels: output channels C'.
        build_size: (Hm, Wm) or an int: the feature size the height-/width-wise
            kernels are built for. Other run-time sizes are resampled per
            branch (bilinear up, adaptive average pooling down).
        kernel_size: DimConv kernel size.
        dilation: DimConv dilation, int or (depth, height, width); the
            reference's ``dilation=[d0, d1, d2]`` is (depth, width, height).
        norm_cfg: normalisation config.
        act_cfg: activation config (PReLU gets one slope per channel).
        deploy: build the deploy (inference) form directly, as
            :meth:`switch_to_deploy` leaves it.
        init_cfg: initialisation config; by default convolutions (DimConv
            included) get Kaiming-normal fan_out, norms weight 1 and bias 0.

    Deploy form (:meth:`switch_to_deploy`): ``dim_conv``, ``dim_norm``,
    ``dim_act`` and ``dim_fuse.local_fusion`` become one
    :class:`~mmdice.ops.DimConvFuse2d` ``dim_conv_fuse`` (C -> C, the fused
    ``mmdice::dice_fuse`` op), which never materialises the 3C channels.

    Shapes: (N, C, H, W) -> (N, C', H, W).
    """

    def __init__(self, in_channels: int, out_channels: int,
                 build_size: Union[int, Sequence[int]], kernel_size: int = 3,
                 dilation: Union[int, Sequence[int]] = 1,
                 norm_cfg: dict = dict(type='BN', eps=1e-5),
                 act_cfg: dict = dict(type='PReLU'), deploy: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.deploy = False
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.dim_conv = DimConv2d(in_channels, build_size, kernel_size, dilation)
        self.build_size = self.dim_conv.build_size
        self.dim_norm = build_norm_layer(norm_cfg, 3 * in_channels)[1]
        self.dim_act = build_act(act_cfg, 3 * in_channels)
        self.dim_fuse = DimFuse(in_channels, out_channels, norm_cfg=norm_cfg, act_cfg=act_cfg)
        if deploy:
            self.switch_to_deploy()

    def init_weights(self) -> None:
        """Kaiming-normal (fan_out) DimConv weights, as the reference's convs.

        Skipped when this unit's ``init_cfg`` loads a pretrained checkpoint.
        """
        super().init_weights()
        init_types = [cfg.get('type') for cfg in _as_list(self.init_cfg)]
        if 'Pretrained' not in init_types:
            dim_conv = self.dim_conv_fuse if self.deploy else self.dim_conv
            for weight in (dim_conv.weight_depth, dim_conv.weight_height, dim_conv.weight_width):
                nn.init.kaiming_normal_(weight, mode='fan_out', nonlinearity='relu')

    def _dim_fuse_input(self, x: Tensor) -> Tensor:
        """The 3C activated DimConv channels; in the deploy form the C locally fused ones."""
        if self.deploy:
            self.refuse_gradient(x, self.dim_conv_fuse.weight_depth)
            return self.dim_conv_fuse(x)
        return norm_act(self.dim_conv(x), self.dim_norm, self.dim_act)

    def forward(self, x: Tensor) -> Tensor:
        return self.dim_fuse(self._dim_fuse_input(x))

    def shuffled_with(self, left: Tensor, x: Tensor) -> Tensor:
        """``channel_shuffle(cat(left, self(x)), 2)``, its end computed in one
        pass (:meth:`DimFuse.shuffled_with`); ``left`` is (N, C', H, W)."""
        return self.dim_fuse.shuffled_with(left, self._dim_fuse_input(x))

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Replace DimConv .. local fusion by one :class:`DimConvFuse2d`, in place.

        Exact in eval mode (running statistics, each BatchNorm's own eps);
        the deploy form is for inference only. A no-op once deployed.
        """
        if self.deploy:
            return
        channels = self.in_channels
        local_fusion = self.dim_fuse.local_fusion
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
        self.dim_fuse.local_fusion = None
        self.dim_fuse.switch_to_deploy()
        self.dim_conv_fuse = fused
        self.deploy = True


def _as_list(init_cfg: Union[None, dict, Sequence[dict]]) -> list:
    if init_cfg is None:
        return []
    if isinstance(init_cfg, dict):
        return [init_cfg]
    return list(init_cfg)
