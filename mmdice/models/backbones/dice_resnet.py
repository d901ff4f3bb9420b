"""ResNet with DiCE units (DiCENet Sec. 3.4 and 5): ResNet-50's stages of
:class:`~mmdice.models.layers.DiCEBottleneck` blocks."""
import numbers
from typing import Optional, Sequence, Tuple, Union

from mmengine.model import ModuleList, Sequential
from torch import Tensor, nn

from mmdice.registry import MODELS
from ..layers import DiCEBottleneck
from .base_backbone import BaseDiCEBackbone, make_divisible


@MODELS.register_module()
class DiCEResNet(BaseDiCEBackbone):
    """ResNet whose bottlenecks end in a separable convolution or a DiCE unit.

    ``stem`` (3x3 stride-2 conv 3 -> 32 + norm + act) and ``maxpool`` (3x3
    stride-2) then four stages ``layers.0`` .. ``layers.3`` of ``depths``
    :class:`~mmdice.models.layers.DiCEBottleneck` blocks (equal widths: the
    first layer, the unit and the output all have the stage's width); the
    first block of stages 1-3 has stride 2. ``spatial='depthwise',
    fusion='pointwise'`` is the paper's ResNet with separable convolutions
    (SC), the defaults its DiCE unit form (DU); the other combinations and
    ``first_fusion='dimfuse'`` are the ablations of its Tables 2 and 3. Widths
    (:attr:`stage_widths`, stem 32) are scaled by ``widen_factor`` and rounded
    to multiples of 8 (at least 8).

    Levels (``out_indices`` select them, mmpretrain's ResNet convention: the
    stage outputs; strides relative to the input):

    ==== ============ ======== ======
    idx  module       channels stride
    ==== ============ ======== ======
    0    ``layers.0`` 64       4
    1    ``layers.1`` 128      8
    2    ``layers.2`` 256      16
    3    ``layers.3`` 512      32
    ==== ============ ======== ======

    Args:
        widen_factor: channel multiplier, a positive number; None (the
            default) is 1.0 unless ``channels`` is given.
        channels: ``(stem, width0, width1, width2, width3)`` positive ints in
            place of ``widen_factor``'s (for widths between its multiples of 8).
        input_size: int or (H, W), multiples of 32: the build size. Stage i's
            units are built for ``input_size / 2**(i + 2)`` (56/28/14/7 at
            224) whatever the run-time input size; other sizes are resampled
            inside the DimConvs.
        depths: blocks of each of the four stages, positive ints.
        spatial: spatial layer of the units, ``'dimconv'`` or ``'depthwise'``.
        fusion: fusion layer of the units, ``'dimfuse'``, ``'pointwise'``,
            ``'se'`` or ``'pointwise_se'``.
        first_fusion: first layer of the blocks, ``'pointwise'`` (1x1 conv)
            or ``'dimfuse'`` (:class:`~mmdice.models.layers.DimFuse`).
        out_indices: levels to return (see the table), within ``range(4)``.
        **kwargs: ``frozen_stages`` (-1 to 4), ``norm_eval``, ``norm_cfg``,
            ``act_cfg``, ``with_cp``, ``deploy``, ``init_cfg``, ``pretrained``:
            as in :class:`BaseDiCEBackbone`.
    """

    #: width of each stage at widen_factor 1.
    stage_widths = (64, 128, 256, 512)
    #: stem channels at widen_factor 1.
    stem_channels = 32

    def __init__(self,
                 widen_factor: Optional[float] = None,
                 input_size: Union[int, Sequence[int]] = 224,
                 channels: Optional[Sequence[int]] = None,
                 depths: Sequence[int] = (3, 4, 6, 3),
                 spatial: str = 'dimconv',
                 fusion: str = 'dimfuse',
                 first_fusion: str = 'pointwise',
                 out_indices: Sequence[int] = (3, ),
                 **kwargs):
        super().__init__(**kwargs)
        stem_channels, *stage_channels = self._check_channels(widen_factor, channels)
        #: channel multiplier; None for custom ``channels``.
        self.widen_factor = None if channels is not None else float(widen_factor or 1.0)
        self.input_size = self._check_input_size(input_size)
        num_stages = len(self.stage_widths)
        if not isinstance(depths, Sequence) or len(depths) != num_stages or not all(
                isinstance(depth, numbers.Integral) and not isinstance(depth, bool)
                and depth > 0 for depth in depths):
            raise ValueError(f'depths must be {num_stages} positive ints (blocks per stage), '
                             f'got {depths!r}')
        self.depths = tuple(int(depth) for depth in depths)
        self._init_levels(out_indices, num_stages, num_stages)
        self.spatial = spatial
        self.fusion = fusion
        self.first_fusion = first_fusion

        self.stem = self._build_stem(stem_channels)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layers = ModuleList()
        in_channels = stem_channels
        for stage, (out_channels, depth) in enumerate(zip(stage_channels, self.depths)):
            total_stride = 2**(stage + 2)
            build_size = (self.input_size[0] // total_stride,
                          self.input_size[1] // total_stride)
            blocks = []
            for index in range(depth):
                blocks.append(
                    DiCEBottleneck(in_channels, out_channels, build_size,
                                   stride=2 if stage > 0 and index == 0 else 1,
                                   spatial=spatial, fusion=fusion, first_fusion=first_fusion,
                                   **self.unit_cfg))
                in_channels = out_channels
            self.layers.append(Sequential(*blocks))
        self._finish_init(stage[-1].out_channels for stage in self.layers)

    def _check_channels(self, widen_factor: Optional[float],
                        channels: Optional[Sequence[int]]) -> list:
        """``[stem, width0, .., width3]`` of ``widen_factor`` or of ``channels``."""
        if channels is None:
            factor = self._check_widen_factor(1.0 if widen_factor is None else widen_factor)
            return [make_divisible(width * factor, 8)
                    for width in (self.stem_channels, *self.stage_widths)]
        if widen_factor is not None:
            raise ValueError(f'give widen_factor or channels, not both: got widen_factor='
                             f'{widen_factor!r} and channels={channels!r}')
        if not isinstance(channels, Sequence) or len(channels) != 5 or not all(
                isinstance(width, numbers.Integral) and not isinstance(width, bool)
                and width > 0 for width in channels):
            raise ValueError('channels must be (stem, width0, width1, width2, width3) of '
                             f'positive ints, got {channels!r}')
        return [int(width) for width in channels]

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(N, 3, H, W) -> tuple of the ``out_indices`` levels, shallowest first;
        level i is (N, level_channels[i], H / 2**(i+2), W / 2**(i+2)) (sizes
        rounded up). Levels deeper than the deepest requested one are not
        computed; the deploy form converts the input to channels-last.
        """
        return self._forward_levels(self.maxpool(self.stem(self._check_images(x))), self.layers)
