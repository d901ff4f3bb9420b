"""Rewrites of an fp32 OpenVINO model that leave its fp32 outputs unchanged
but make it easier to quantize to int8 with per-tensor activation ranges.

* :func:`equalize_prelu_pairs`: cross-layer equalization of
  convolution -> (bias) -> PReLU -> convolution chains, exact because
  ``PReLU(x / s) = PReLU(x) / s`` for per-channel ``s > 0``;
* :func:`fold_constant_channels`: channels of a convolution that are constant
  on the calibration inputs (e.g. the "dead" BatchNorm channels of released
  checkpoints, running variance ~0) are zeroed and their constant contribution
  is folded into the bias of the 1x1 convolution that reads them.

Both change constants only (op names stay), so NNCF's ignored scopes and the
int8 diagnosis (:mod:`mmdice.apis.int8_sensitivity`) keep working.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

__all__ = ['ConvChain', 'prelu_chains', 'equalize_prelu_pairs', 'channel_ranges',
           'fold_constant_channels']

_CONVS = ('Convolution', 'GroupConvolution')


@dataclass
class ConvChain:
    """``first`` conv -> ``bias`` Add (or None) -> ``prelu`` (or None) -> ``second`` conv,
    each output read only by the next op."""
    first: object
    bias: Optional[object]
    prelu: Optional[object]
    second: object


def _constant(output) -> Optional[np.ndarray]:
    node = output.get_node()
    return node.get_data() if node.get_type_name() == 'Constant' else None


def _only_consumer(output) -> Optional[object]:
    targets = list(output.get_target_inputs())
    return targets[0] if len(targets) == 1 else None


def _channel_vector(data: np.ndarray, channels: int) -> Optional[np.ndarray]:
    """``data`` (a bias or PReLU slope constant) as (channels,) if it is per
    channel along axis 1 or a scalar."""
    if data.size == 1:
        return np.full(channels, float(data.reshape(-1)[0]))
    if data.size == channels and (data.ndim == 1 or data.shape[1] == channels):
        return data.reshape(-1).astype(np.float64)
    return None


def _out_channels(conv) -> int:
    shape = conv.input_value(1).get_shape()
    return int(shape[0] * shape[1]) if conv.get_type_name() == 'GroupConvolution' \
        else int(shape[0])


def prelu_chains(ov_model, with_prelu: bool = True) -> List[ConvChain]:
    """The conv -> [bias] -> PReLU -> conv chains of ``ov_model`` with constant
    weights, bias and slopes per channel (``with_prelu=False``: conv -> [bias] ->
    conv, nothing between)."""
    chains = []
    for first in ov_model.get_ordered_ops():
        if first.get_type_name() not in _CONVS or _constant(first.input_value(1)) is None:
            continue
        channels = _out_channels(first)
        out, bias = first.output(0), None
        target = _only_consumer(out)
        if target is not None and target.get_node().get_type_name() == 'Add':
            node = target.get_node()
            other = node.input_value(1 - target.get_index())
            data = _constant(other)
            if data is not None and _channel_vector(data, channels) is not None:
                bias, out = node, node.output(0)
                target = _only_consumer(out)
        prelu = None
        if with_prelu:
            if target is None or target.get_node().get_type_name() != 'PRelu' \
                    or target.get_index() != 0:
                continue
            prelu = target.get_node()
            slope = _constant(prelu.input_value(1))
            if slope is None or _channel_vector(slope, channels) is None:
                continue
            target = _only_consumer(prelu.output(0))
        if target is None or target.get_index() != 0:
            continue
        second = target.get_node()
        if second.get_type_name() not in _CONVS or _constant(second.input_value(1)) is None:
            continue
        chains.append(ConvChain(first, bias, prelu, second))
    return chains


def _replace_constant(node, port: int, data: np.ndarray) -> None:
    from openvino import opset13 as ops
    old = node.input_value(port)
    new = ops.constant(data.astype(old.get_element_type().to_dtype()))
    node.input(port).replace_source_output(new.output(0))


def _first_rows(weight: np.ndarray, kind: str) -> np.ndarray:
    """(out channels, -1) view of a conv weight (GroupConvolution: [G, O, I, kh, kw])."""
    rows = weight.shape[0] * weight.shape[1] if kind == 'GroupConvolution' else weight.shape[0]
    return weight.reshape(rows, -1)


def _scale_inputs(weight: np.ndarray, kind: str, factor: np.ndarray) -> np.ndarray:
    """``weight`` with its input channel c multiplied by ``factor[c]``."""
    if kind == 'Convolution':  # [O, I, kh, kw]
        return weight * factor.reshape(1, -1, *([1] * (weight.ndim - 2)))
    groups, _, per_group = weight.shape[:3]  # [G, O, I, kh, kw], input channel g * I + i
    return weight * factor.reshape(groups, 1, per_group, *([1] * (weight.ndim - 3)))


def _input_ranges(weight: np.ndarray, kind: str) -> np.ndarray:
    """Max |w| per input channel of a conv weight."""
    if kind == 'Convolution':
        return np.abs(weight).max(axis=tuple(i for i in range(weight.ndim) if i != 1))
    groups, outs, per_group = weight.shape[:3]
    return np.abs(weight).transpose(0, 2, 1, *range(3, weight.ndim)).reshape(
        groups * per_group, -1).max(axis=1)


def equalize_prelu_pairs(ov_model, activation_ranges: Optional[Dict[str, np.ndarray]] = None,
                         alpha: float = 0.5, max_scale: float = 1e4) -> int:
    """Cross-layer equalization, in place, of the conv -> [bias] -> PReLU -> conv
    chains (:func:`prelu_chains`): channel c of the first conv (weights, bias)
    is divided by ``s_c > 0`` and input channel c of the second multiplied by
    it, exact in fp32 up to rounding. With ``activation_ranges`` ({PReLU name:
    (C,) max |activation| per channel on calibration data}) ``s_c = a_c^alpha /
    w_c^(1 - alpha)`` (``w_c``: max |weight| of the second conv's input channel
    c), which makes the per-channel activation ranges even for a per-tensor
    activation scale; without them Nagel et al.'s CLE, ``s_c = sqrt(r1_c / w_c)``
    (``r1_c``: max |weight| of the first conv's output channel c). Scales are
    clipped to [1 / max_scale, max_scale]; channels with a zero range keep 1.
    Returns the number of chains equalized."""
    done = 0
    for chain in prelu_chains(ov_model):
        first_kind, second_kind = chain.first.get_type_name(), chain.second.get_type_name()
        w1 = _constant(chain.first.input_value(1)).astype(np.float64)
        w2 = _constant(chain.second.input_value(1)).astype(np.float64)
        rows = _first_rows(w1, first_kind)
        w2_ranges = _input_ranges(w2, second_kind)
        if w2_ranges.size != rows.shape[0]:
            continue
        ranges = None if activation_ranges is None else activation_ranges.get(
            chain.prelu.get_friendly_name())
        if ranges is not None:
            scale = np.power(np.maximum(ranges, 1e-30), alpha) / np.power(
                np.maximum(w2_ranges, 1e-30), 1 - alpha)
            valid = (ranges > 0) & (w2_ranges > 0)
        else:
            r1 = np.abs(rows).max(axis=1)
            scale = np.sqrt(np.maximum(r1, 1e-30) / np.maximum(w2_ranges, 1e-30))
            valid = (r1 > 0) & (w2_ranges > 0)
        scale = np.where(valid, np.clip(scale, 1 / max_scale, max_scale), 1.0)
        _replace_constant(chain.first, 1, (rows / scale[:, None]).reshape(w1.shape))
        if chain.bias is not None:
            port = 1 if _constant(chain.bias.input_value(1)) is not None else 0
            bias = _constant(chain.bias.input_value(port)).astype(np.float64)
            _replace_constant(chain.bias, port,
                              (_channel_vector(bias, scale.size) / scale).reshape(bias.shape)
                              if bias.size > 1 else bias)
            if bias.size == 1 and not np.all(scale == 1):
                raise ValueError(f'{chain.bias.get_friendly_name()}: a scalar bias cannot '
                                 f'take per-channel scales')
        _replace_constant(chain.second, 1, _scale_inputs(w2, second_kind, scale))
        done += 1
    ov_model.validate_nodes_and_infer_types()
    return done


def channel_ranges(ov_model, names: Sequence[str], inputs: Sequence[np.ndarray]
                   ) -> Dict[str, np.ndarray]:
    """{op name: (C,) max |output 0| per channel (axis 1)} over ``inputs``, and
    {op name + '/min', '/max'}: per-channel min and max (fp32, f32 compile)."""
    from .int8_sensitivity import _run_with_outputs
    result: Dict[str, np.ndarray] = {}
    for tensors in _run_with_outputs(ov_model, [(name, 0) for name in names], inputs):
        for name, tensor in zip(names, tensors):
            flat = tensor.reshape(tensor.shape[0], tensor.shape[1], -1)
            low, high = flat.min(axis=(0, 2)), flat.max(axis=(0, 2))
            if name + '/min' in result:
                low = np.minimum(low, result[name + '/min'])
                high = np.maximum(high, result[name + '/max'])
            result[name + '/min'], result[name + '/max'] = low, high
            result[name] = np.maximum(np.abs(low), np.abs(high))
    return result


def fold_constant_channels(ov_model, inputs: Sequence[np.ndarray],
                           tolerance: float = 1e-6) -> int:
    """Zero, in place, the output channels (weights and bias) of conv -> [bias]
    -> [PReLU] -> 1x1 conv chains whose activation is constant (max - min <=
    ``tolerance``) on ``inputs``, so that they leave the per-tensor activation
    range, adding their constant contribution to the 1x1 conv's bias Add (a
    chain whose second conv has no constant bias Add is left alone). Exact
    where the channels are constant on other inputs too: check the outputs.
    Returns the number of channels folded."""
    chains = [chain for chain in prelu_chains(ov_model, with_prelu=True)
              + prelu_chains(ov_model, with_prelu=False)
              if chain.second.get_type_name() == 'Convolution'
              and tuple(chain.second.input_value(1).get_shape()[2:]) == (1, 1)]
    ends = {}
    for chain in chains:
        end = chain.prelu or chain.bias or chain.first
        ends[end.get_friendly_name()] = chain
    ranges = channel_ranges(ov_model, list(ends), inputs)
    folded = 0
    for name, chain in ends.items():
        low, high = ranges[name + '/min'], ranges[name + '/max']
        constant = (high - low) <= tolerance
        after = _only_consumer(chain.second.output(0))
        if not constant.any() or after is None or after.get_node().get_type_name() != 'Add':
            continue
        add = after.get_node()
        port = 1 - after.get_index()
        bias = _constant(add.input_value(port))
        w2 = _constant(chain.second.input_value(1)).astype(np.float64)
        if bias is None or _channel_vector(bias, w2.shape[0]) is None:
            continue
        value = np.where(constant, (low + high) / 2, 0.0)
        contribution = w2[:, :, 0, 0] @ value
        new_bias = _channel_vector(bias, w2.shape[0]) + contribution
        _replace_constant(add, port, new_bias.reshape(bias.shape) if bias.size > 1
                          else new_bias.reshape(1, -1, 1, 1))
        w1 = _constant(chain.first.input_value(1)).astype(np.float64)
        rows = _first_rows(w1, chain.first.get_type_name())
        rows[constant] = 0
        _replace_constant(chain.first, 1, rows.reshape(w1.shape))
        if chain.bias is not None:
            first_port = 1 if _constant(chain.bias.input_value(1)) is not None else 0
            first_bias = _constant(chain.bias.input_value(first_port)).astype(np.float64)
            vector = _channel_vector(first_bias, rows.shape[0])
            vector[constant] = 0
            _replace_constant(chain.bias, first_port, vector.reshape(
                first_bias.shape if first_bias.size > 1 else (1, -1, 1, 1)))
        folded += int(constant.sum())
    ov_model.validate_nodes_and_infer_types()
    return folded
