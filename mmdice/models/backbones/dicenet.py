"""DiCENet backbone (Mehta et al., "DiCENet: Dimension-wise Convolutions for
Efficient Networks"), following the authors' EdgeNets code."""
import numbers
from typing import Optional, Sequence, Tuple, Union

from mmengine.model import ModuleList, Sequential
from torch import Tensor, nn

from mmdice.ops.extension import graph_capture
from mmdice.registry import MODELS
from ..layers import ShuffleDiCEBlock, StridedDiCE
from ..layers.dice_unit import FUSIONS, SPATIAL_LAYERS
from .base_backbone import BaseDiCEBackbone


@MODELS.register_module()
class DiCENet(BaseDiCEBackbone):
    """DiCENet backbone.

    Levels (``out_indices`` select them; channels from :attr:`arch_settings`
    ``[ch0, ch1, ch2, ch3, ch4, ch5]``, strides relative to the input):

    ==== ============ ================================================ ========
    idx  module       content                                          stride
    ==== ============ ================================================ ========
    0    ``stem``     3x3 stride-2 conv 3 -> ch0 + norm + act          2
    1    ``maxpool``  3x3 stride-2 max pooling                         4
    2    ``layers.0`` StridedDiCE (-> 2*ch1), 3 ShuffleDiCEBlocks (ch2)  8
    3    ``layers.1`` StridedDiCE (-> 2*ch2), 7 ShuffleDiCEBlocks (ch3)  16
    4    ``layers.2`` StridedDiCE (-> 2*ch3), 3 ShuffleDiCEBlocks (ch4)  32
    ==== ============ ================================================ ========

    ``ch5`` is the width of the classifier's grouped FC (see ``DiCEClsHead``).

    Args:
        widen_factor: the scale s, a key of :attr:`arch_settings`; None (the
            default) is s=1.0 unless ``channels`` is given.
        channels: ``[ch0, ch1, ch2, ch3, ch4, ch5]`` of another width
            (positive ints, ch2..ch4 even), in place of ``widen_factor``.
        input_size: int or (H, W), multiples of 32: the build size. Stage i's
            DiCE units are built for ``input_size / 2**(i + 3)`` (28/14/7 at
            224) whatever the run-time input size; other sizes are resampled
            inside the units.
        num_stages: number of DiCE stages built, 1 to 3.
        out_indices: levels to return (see the table), within
            ``range(num_stages + 2)``.
        spatial: spatial layer of every DiCE unit, ``'dimconv'`` (DiCENet) or
            ``'depthwise'`` (see :class:`~mmdice.models.layers.DiCEUnit`).
        fusion: fusion of every DiCE unit, ``'dimfuse'`` (DiCENet),
            ``'pointwise'``, ``'se'`` or ``'pointwise_se'``; ``spatial=
            'depthwise', fusion='pointwise'`` is the separable ShuffleNetV2
            built by the same code (the paper's ablations, Tables 1 and 2).
        first_fusion: first layer of each block's branch, ``'pointwise'``
            (DiCENet) or ``'dimfuse'`` (Table 3).
        **kwargs: ``frozen_stages`` (-1 to ``num_stages``; 0 freezes the stem
            and max pooling), ``norm_eval``, ``norm_cfg`` (keep BN eps 1e-5: the
            released checkpoints contain dead BN channels), ``act_cfg``,
            ``with_cp``, ``deploy``, ``init_cfg``, ``pretrained``: as in
            :class:`BaseDiCEBackbone`.
    """

    #: widen_factor -> [ch0, ch1, ch2, ch3, ch4, ch5] (EdgeNets ``sc_ch_dict``).
    arch_settings = {
        0.1: [8, 8, 16, 32, 64, 512],
        0.2: [16, 16, 32, 64, 128, 1024],
        0.5: [24, 24, 48, 96, 192, 1024],
        0.75: [24, 24, 86, 172, 344, 1024],
        1.0: [24, 24, 116, 232, 464, 1024],
        1.25: [24, 24, 144, 288, 576, 1024],
        1.5: [24, 24, 176, 352, 704, 1024],
        1.75: [24, 24, 210, 420, 840, 1024],
        2.0: [24, 24, 244, 488, 976, 1024],
        2.4: [24, 24, 278, 556, 1112, 1280],
    }
    #: ShuffleDiCEBlocks after the StridedDiCE of each stage.
    stage_blocks = (3, 7, 3)

    def __init__(self,
                 widen_factor: Optional[float] = None,
                 input_size: Union[int, Sequence[int]] = 224,
                 num_stages: int = 3,
                 out_indices: Sequence[int] = (4, ),
                 channels: Optional[Sequence[int]] = None,
                 spatial: str = 'dimconv',
                 fusion: str = 'dimfuse',
                 first_fusion: str = 'pointwise',
                 **kwargs):
        super().__init__(**kwargs)
        self.channels = self._check_channels(widen_factor, channels)
        if spatial not in SPATIAL_LAYERS:
            raise ValueError(f'spatial must be one of {SPATIAL_LAYERS}, got {spatial!r}')
        if fusion not in FUSIONS:
            raise ValueError(f'fusion must be one of {FUSIONS}, got {fusion!r}')
        self.input_size = self._check_input_size(input_size)
        if num_stages not in range(1, len(self.stage_blocks) + 1):
            raise ValueError(f'num_stages must be 1, 2 or 3, got {num_stages!r}')
        self._init_levels(out_indices, num_stages + 2, num_stages,
                          context=f' for num_stages={num_stages}')
        #: the scale s; None for custom ``channels``.
        self.widen_factor = None if channels is not None else (widen_factor or 1.0)
        self.num_stages = num_stages

        stem_channels = self.channels[0]
        self.stem = self._build_stem(stem_channels)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        level_channels = [stem_channels, stem_channels]
        self.layers = ModuleList()
        in_channels = stem_channels
        for stage, num_blocks in enumerate(self.stage_blocks[:num_stages]):
            stride = 2**(stage + 3)
            build_size = (self.input_size[0] // stride, self.input_size[1] // stride)
            out_channels = self.channels[stage + 2]
            unit_cfg = dict(spatial=spatial, fusion=fusion, **self.unit_cfg)
            units = [StridedDiCE(in_channels, build_size, **unit_cfg)]
            block_in = 2 * in_channels
            for _ in range(num_blocks):
                units.append(ShuffleDiCEBlock(block_in, out_channels, build_size,
                                              first_fusion=first_fusion, **unit_cfg))
                block_in = out_channels
            self.layers.append(Sequential(*units))
            level_channels.append(out_channels)
            in_channels = out_channels
        self._finish_init(level_channels)

    @classmethod
    def _check_channels(cls, widen_factor: Optional[float],
                        channels: Optional[Sequence[int]]) -> list:
        """The ``[ch0, .., ch5]`` of ``widen_factor`` or of ``channels``."""
        if channels is None:
            widen_factor = 1.0 if widen_factor is None else widen_factor
            if not isinstance(widen_factor, numbers.Real) or isinstance(widen_factor, bool) \
                    or widen_factor not in cls.arch_settings:
                raise ValueError(f'widen_factor must be one of {sorted(cls.arch_settings)}, '
                                 f'got {widen_factor!r}')
            return list(cls.arch_settings[widen_factor])
        if widen_factor is not None:
            raise ValueError(f'give widen_factor or channels, not both: got widen_factor='
                             f'{widen_factor!r} and channels={channels!r}')
        valid = isinstance(channels, Sequence) and len(channels) == 6 and all(
            isinstance(width, numbers.Integral) and width > 0 for width in channels)
        if not valid or any(width % 2 for width in channels[2:5]):
            raise ValueError('channels must be [ch0, ch1, ch2, ch3, ch4, ch5] of positive ints '
                             f'with ch2, ch3 and ch4 even, got {channels!r}')
        return [int(width) for width in channels]

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(N, 3, H, W) -> tuple of the ``out_indices`` levels, shallowest first.

        Levels deeper than the deepest requested one are not computed. The
        deploy form runs channels-last inside (its pooling and depth-wise
        convolutions are several times faster so on CPU), so its outputs are
        channels-last tensors.
        """
        x = self._check_images(x)
        levels = (self.stem, self.maxpool, *self.layers)
        if self._pool_before_stem_activation():
            x = self.stem.activate(self.maxpool(self.stem.conv(x)))
            levels = (nn.Identity(), nn.Identity(), *self.layers)
        return self._forward_levels(x, levels)

    def _pool_before_stem_activation(self) -> bool:
        """Whether the eager deploy form max-pools the stem's conv output before
        its activation: exact for a PReLU whose slopes are all >= 0 (a
        non-decreasing function commutes with max), and 4x fewer elements
        to activate. Needs the stem output itself not to be requested."""
        capture = graph_capture()
        if not self.deploy or 0 in self.out_indices or capture.compiling or capture.tracing:
            return False
        stem = self.stem
        return (not stem.with_norm and stem.with_activation
                and isinstance(stem.activate, nn.PReLU)
                and bool((stem.activate.weight >= 0).all()))
