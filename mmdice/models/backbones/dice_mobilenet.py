"""MobileNet with DiCE units (DiCENet Sec. 3.4 and 5.1): MobileNetV1's stack of
separable convolutions, each replaced by a :class:`~mmdice.models.layers.DiCEUnit`."""
from typing import Sequence, Tuple, Union

from mmengine.model import ModuleList, Sequential
from torch import Tensor

from mmdice.registry import MODELS
from ..layers import DiCEUnit
from .base_backbone import BaseDiCEBackbone, make_divisible


@MODELS.register_module()
class DiCEMobileNet(BaseDiCEBackbone):
    """MobileNet (V1 layout) built from DiCE units.

    ``stem`` (3x3 stride-2 conv 3 -> 32 + norm + act) followed by MobileNetV1's
    13 units (:attr:`arch_settings`), each a
    ``DiCEUnit(in, out, build_size, stride=stride, spatial=spatial,
    fusion=fusion)``; ``spatial='depthwise', fusion='pointwise'`` makes them
    MobileNet's separable convolutions (the paper's SC), the defaults the DiCE
    units (DU). Channels are the table's times ``widen_factor``, rounded to
    multiples of 8 (at least 8). Levels (``out_indices`` select them; strides
    relative to the input):

    ==== ================================= ======== ======
    idx  modules                           channels stride
    ==== ================================= ======== ======
    0    ``stem``, ``layers.0`` (1 unit)   64       2
    1    ``layers.1`` (2 units)            128      4
    2    ``layers.2`` (2 units)            256      8
    3    ``layers.3`` (6 units)            512      16
    4    ``layers.4`` (2 units)            1024     32
    ==== ================================= ======== ======

    Args:
        widen_factor: channel multiplier, a positive number.
        input_size: int or (H, W), multiples of 32: the build size. A unit of
            output stride s (relative to the input) is built for
            ``input_size / s`` whatever the run-time input size; other sizes
            are resampled inside the DimConvs.
        spatial: spatial layer of the units, ``'dimconv'`` or ``'depthwise'``.
        fusion: fusion layer of the units, ``'dimfuse'``, ``'pointwise'`` or
            ``'pointwise_se'`` (``'se'`` keeps the channel count, which
            MobileNet does not).
        out_indices: levels to return (see the table), within ``range(5)``.
        **kwargs: ``frozen_stages`` (-1 to 5; i > 0 freezes the stem and
            ``layers.0`` .. ``layers.{i-1}``), ``norm_eval``, ``norm_cfg``,
            ``act_cfg``, ``with_cp``, ``deploy``, ``init_cfg``, ``pretrained``:
            as in :class:`BaseDiCEBackbone`.
    """

    #: (out_channels, stride) of the 13 units at widen_factor 1 (MobileNetV1).
    arch_settings = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1),
                     (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
    #: stem channels at widen_factor 1.
    stem_channels = 32

    def __init__(self,
                 widen_factor: float = 1.0,
                 input_size: Union[int, Sequence[int]] = 224,
                 spatial: str = 'dimconv',
                 fusion: str = 'dimfuse',
                 out_indices: Sequence[int] = (4, ),
                 **kwargs):
        super().__init__(**kwargs)
        self.widen_factor = self._check_widen_factor(widen_factor)
        self.input_size = self._check_input_size(input_size)
        num_stages = 1 + sum(stride == 2 for _, stride in self.arch_settings)
        self._init_levels(out_indices, num_stages, num_stages)
        self.spatial = spatial
        self.fusion = fusion

        stem_channels = make_divisible(self.stem_channels * widen_factor, 8)
        self.stem = self._build_stem(stem_channels)
        stages = [[]]
        in_channels, total_stride = stem_channels, 2
        for index, (channels, stride) in enumerate(self.arch_settings):
            if stride == 2 and index > 0:
                stages.append([])
            out_channels = make_divisible(channels * widen_factor, 8)
            total_stride *= stride
            build_size = (self.input_size[0] // total_stride,
                          self.input_size[1] // total_stride)
            stages[-1].append(
                DiCEUnit(in_channels, out_channels, build_size, stride=stride, spatial=spatial,
                         fusion=fusion, **self.unit_cfg))
            in_channels = out_channels
        self.layers = ModuleList(Sequential(*units) for units in stages)
        self._finish_init(stage[-1].out_channels for stage in self.layers)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(N, 3, H, W) -> tuple of the ``out_indices`` levels, shallowest first;
        level i is (N, level_channels[i], H / 2**(i+1), W / 2**(i+1)) (sizes
        rounded up). Levels deeper than the deepest requested one are not
        computed; the deploy form converts the input to channels-last.
        """
        return self._forward_levels(self.stem(self._check_images(x)), self.layers)
