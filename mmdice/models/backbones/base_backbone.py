"""What the mmdice backbones share: argument and input checks, freezing, norm_eval."""
import numbers
import warnings
from typing import Optional, Sequence, Tuple, Union

from mmengine.model import BaseModule
import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..deploy import DeployMixin
from ..layers import act_cfg_for
from ..layers.norm_act import ConvNormAct

#: Default ``init_cfg`` of the backbones: Kaiming-normal fan_out for
#: convolutions, weight 1 / bias 0 for norms, as the reference.
DEFAULT_INIT_CFG = (
    dict(type='Kaiming', layer='Conv2d', mode='fan_out', nonlinearity='relu',
         distribution='normal'),
    dict(type='Constant', layer=['_BatchNorm', 'GroupNorm'], val=1, bias=0))

#: Model-zoo prefixes of mmengine's checkpoint loader; none of them hosts an mmdice
#: backbone, so a ``pretrained`` naming one is another network's weights.
FOREIGN_MODEL_ZOOS = ('open-mmlab://', 'openmmlab://', 'torchvision://', 'modelzoo://',
                      'mmcls://')


def make_divisible(value: float, divisor: int = 8, min_value: Optional[int] = None,
                   min_ratio: float = 0.9) -> int:
    """``value`` rounded to the nearest multiple of ``divisor``, at least
    ``min_value`` (default ``divisor``) and at least ``min_ratio * value``
    (mmpretrain's ``make_divisible``)."""
    if min_value is None:
        min_value = divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < min_ratio * value:
        new_value += divisor
    return new_value


class BaseDiCEBackbone(DeployMixin, BaseModule):
    """The skeleton of the mmdice backbones: a ``stem`` and stages of units.

    A subclass gives only its stage layout: it takes its own arguments and
    passes the shared ones below on (``**kwargs``) to this ``__init__``, checks
    its levels with :meth:`_init_levels`, builds ``stem`` (:meth:`_build_stem`)
    and ``layers`` (a ModuleList of stages, Sequentials of units with a deploy
    form, each built with :attr:`unit_cfg`), and ends with :meth:`_finish_init`; its
    ``forward`` runs :meth:`_forward_levels`.

    Arguments the backbones share:
        frozen_stages: -1 freezes nothing, 0 the stem, i > 0 the stem and the
            first i stages (params fixed, eval mode); -1 to the number of stages.
        norm_eval: keep norm layers in eval mode (frozen running statistics)
            during training.
        norm_cfg: normalisation config (BN eps 1e-5 as the reference).
        act_cfg: activation config; PReLU gets one slope per channel.
        with_cp: use torch.utils.checkpoint in each unit (block) when training,
            each recomputing itself in backward.
        deploy: build the deploy (inference) form directly, as
            :meth:`switch_to_deploy` leaves it, e.g. to load a checkpoint of
            ``tools/model_converters/reparameterize_model.py``.
        init_cfg: initialisation config; default Kaiming-normal fan_out for
            convolutions, weight 1 / bias 0 for norms (DimConv weights:
            ``DiCEUnit.init_weights``).
        pretrained: deprecated, as in the OpenMMLab backbones: a checkpoint
            becomes a ``Pretrained`` ``init_cfg``, None is ignored (see
            :meth:`_init_cfg_of_pretrained`).
    """

    def __init__(self,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 norm_cfg: dict = dict(type='BN', eps=1e-5),
                 act_cfg: dict = dict(type='PReLU'),
                 with_cp: bool = False,
                 deploy: bool = False,
                 init_cfg: Optional[Union[dict, Sequence[dict]]] = DEFAULT_INIT_CFG,
                 pretrained: Optional[str] = None):
        init_cfg = self._init_cfg_of_pretrained(init_cfg, pretrained)
        if isinstance(init_cfg, tuple):
            init_cfg = list(init_cfg)
        super().__init__(init_cfg=init_cfg)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        #: the arguments every unit (block) of the stages is built with.
        self.unit_cfg = dict(norm_cfg=norm_cfg, act_cfg=act_cfg, with_cp=with_cp)
        #: whether :meth:`_finish_init` converts to the deploy form.
        self.build_deployed = deploy

    @classmethod
    def _init_cfg_of_pretrained(cls, init_cfg, pretrained: Optional[str]):
        """``init_cfg``, or the ``Pretrained`` one of the deprecated ``pretrained``.

        As the OpenMMLab backbones: a checkpoint path or URL becomes
        ``init_cfg=dict(type='Pretrained', checkpoint=pretrained)`` with a
        FutureWarning, and None (what mmseg's segmentors pass on from
        ``model.pretrained=None``) is ignored. A model-zoo name
        (``open-mmlab://``, ``torchvision://``, ...) is refused with a
        ValueError saying what to write: the zoos hold other networks' weights,
        typically the ``model.pretrained`` of the base config whose backbone
        was replaced.
        """
        if pretrained is None:
            return init_cfg
        name = cls.__name__
        if not isinstance(pretrained, str):
            raise ValueError(f'{name}: pretrained must be a checkpoint path or URL, or None, '
                             f'got {pretrained!r}')
        if pretrained.startswith(FOREIGN_MODEL_ZOOS):
            raise ValueError(
                f'{name} got pretrained={pretrained!r}, the weights of another network (the '
                "model.pretrained of a base config whose backbone it replaces?): set "
                'model.pretrained=None in the config, and to start from a checkpoint of this '
                f"backbone model.backbone.init_cfg=dict(type='Pretrained', checkpoint=PATH)")
        default = init_cfg is None or (isinstance(init_cfg, (list, tuple))
                                       and list(init_cfg) == list(DEFAULT_INIT_CFG))
        if not default:
            raise ValueError(f'{name}: init_cfg and pretrained cannot both be set; use '
                             f"init_cfg=dict(type='Pretrained', checkpoint={pretrained!r})")
        warnings.warn(
            f"{name}: pretrained is deprecated, use init_cfg=dict(type='Pretrained', "
            f'checkpoint={pretrained!r})', FutureWarning, stacklevel=3)
        return dict(type='Pretrained', checkpoint=pretrained)

    def _init_levels(self, out_indices: Union[int, Sequence[int]], num_levels: int,
                     num_stages: int, context: str = '') -> None:
        """Check and set ``out_indices`` (of ``num_levels`` levels) and
        ``frozen_stages`` (of ``num_stages`` stages); ``context`` ends the
        error messages (e.g. ' for num_stages=2')."""
        self.out_indices = self._check_out_indices(out_indices, num_levels, context)
        self.frozen_stages = self._check_frozen_stages(self.frozen_stages, num_stages, context)

    def _build_stem(self, stem_channels: int) -> nn.Module:
        """The stem: 3x3 stride-2 conv 3 -> ``stem_channels`` + norm + act."""
        return ConvNormAct(3, stem_channels, 3, stride=2, padding=1,
                           norm_cfg=self.unit_cfg['norm_cfg'],
                           act_cfg=act_cfg_for(self.unit_cfg['act_cfg'], stem_channels))

    def _finish_init(self, level_channels: Sequence[int]) -> None:
        """Record the channels of the levels, convert to the deploy form if
        built with ``deploy`` and freeze the ``frozen_stages``."""
        #: channels of every level.
        self.level_channels = tuple(level_channels)
        #: channels of the returned levels, shallowest first (as ``forward``).
        self.out_channels = tuple(self.level_channels[i] for i in sorted(set(self.out_indices)))
        self.deploy = False
        if self.build_deployed:
            self.switch_to_deploy()
        self._freeze_stages()

    def _forward_levels(self, x: Tensor, levels: Sequence[nn.Module]) -> Tuple[Tensor, ...]:
        """Run ``levels`` in turn on ``x``; the outputs of the ``out_indices``
        ones, shallowest first. Levels deeper than the deepest requested one
        are not computed."""
        outs = []
        for level, module in enumerate(levels):
            x = module(x)
            if level in self.out_indices:
                outs.append(x)
            if level == max(self.out_indices):
                break
        return tuple(outs)

    def switch_to_deploy(self) -> None:
        """Convert to the deploy form in place: the stem and every unit (block)
        of the stages convert themselves. Exact in eval mode, inference only,
        idempotent."""
        if self.deploy:
            return
        self.stem.switch_to_deploy()
        for stage in self.layers:
            for unit in stage:
                unit.switch_to_deploy()
        self.deploy = True

    @staticmethod
    def _check_input_size(input_size: Union[int, Sequence[int]]) -> Tuple[int, int]:
        """(H, W) of an int or (H, W) of positive multiples of 32."""
        if isinstance(input_size, numbers.Integral):
            size = (input_size, input_size)
        else:  # a float or another non-sequence is no size: rejected below
            size = tuple(input_size) if isinstance(input_size, Sequence) else ()
        if len(size) != 2 or not all(
                isinstance(side, numbers.Integral) and side > 0 and side % 32 == 0
                for side in size):
            raise ValueError('input_size must be a positive multiple of 32 or (H, W) of '
                             f'positive multiples of 32, got {input_size!r}')
        return int(size[0]), int(size[1])

    @staticmethod
    def _check_widen_factor(widen_factor: float) -> float:
        """A positive finite real number (not a bool)."""
        if not isinstance(widen_factor, numbers.Real) or isinstance(widen_factor, bool) \
                or not 0 < widen_factor < float('inf'):
            raise ValueError(f'widen_factor must be a positive number, got {widen_factor!r}')
        return float(widen_factor)

    @staticmethod
    def _check_out_indices(out_indices: Union[int, Sequence[int]], num_levels: int,
                           context: str = '') -> Tuple[int, ...]:
        """A non-empty tuple of levels in ``range(num_levels)``; ``context``
        ends the error message (e.g. ' for num_stages=2')."""
        if isinstance(out_indices, numbers.Integral):
            out_indices = (out_indices, )
        out_indices = tuple(out_indices) if isinstance(out_indices, Sequence) else ()
        if not out_indices or not all(
                isinstance(index, numbers.Integral) and index in range(num_levels)
                for index in out_indices):
            raise ValueError(f'out_indices must be a non-empty sequence of levels in '
                             f'range(0, {num_levels}){context}, got {out_indices!r}')
        return out_indices

    @staticmethod
    def _check_frozen_stages(frozen_stages: int, num_stages: int, context: str = '') -> int:
        """-1 .. num_stages; ``context`` ends the error message."""
        if not isinstance(frozen_stages, numbers.Integral) or isinstance(frozen_stages, bool) \
                or frozen_stages not in range(-1, num_stages + 1):
            raise ValueError(f'frozen_stages must be in range(-1, {num_stages + 1}){context}, '
                             f'got {frozen_stages!r}')
        return int(frozen_stages)

    def _check_images(self, x: Tensor) -> Tensor:
        """Validate an image batch (N, 3, H, W) of floats; the deploy form
        runs channels-last inside (its pooling and depth-wise convolutions are
        several times faster so on CPU), so it returns ``x`` channels-last."""
        name = type(self).__name__
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != 3:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f'{name} input must be an image batch (N, 3, H, W), got {shape}')
        if not x.is_floating_point():
            raise ValueError(f'{name} input must be a floating-point tensor (normalised '
                             f'images), got dtype {x.dtype}')
        if self.deploy:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        for module in (self.stem, *self.layers[:self.frozen_stages]):
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'BaseDiCEBackbone':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self
