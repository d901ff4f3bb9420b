"""Where int8 post-training quantization changes a model's answers.

Compares an NNCF int8 OpenVINO model (``FakeQuantize`` nodes, as
:func:`mmdice.apis.quantize.quantize_model` returns it) with the fp32 OpenVINO
model it was made from, on the same inputs:

* per quantized layer (every op fed by a quantizer): the SQNR of its int8
  output against its fp32 output (the error accumulated up to that layer);
* per quantizer (``FakeQuantize``): the SQNR of its own rounding and clipping
  on the fp32 tensor it quantizes, and for activations the per-channel ranges
  (channel axis 1) against the one per-tensor range that int8 gives them;
* for the quantizers with the lowest SQNR: the argmax agreement with fp32 (over
  axis 1 of the first output: classes) when only that quantizer is active, and
  when all but it are.

SQNR: ``10 log10(sum(fp32^2) / sum((int8 - fp32)^2))`` in dB over all elements
and inputs (``inf``: identical).
"""
from dataclasses import asdict, dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

__all__ = ['Quantizer', 'find_quantizers', 'fp32_weights', 'fake_quantize', 'sqnr_db',
           'bypass_quantizers',
           'argmax_agreement', 'layer_sqnr', 'quantizer_statistics', 'rank_quantizers',
           'analyse_int8']

#: Compile settings: float layers in f32 (OpenVINO picks bf16 where the CPU has it).
F32 = {'INFERENCE_PRECISION_HINT': 'f32'}
#: At most this many extra outputs are compiled into one model at a time.
OUTPUT_CHUNK = 64


@dataclass
class Quantizer:
    """One ``FakeQuantize`` of an int8 model and what it quantizes."""
    name: str
    source: str  #: friendly name of the op whose output it quantizes
    source_port: int
    source_type: str
    weight: bool  #: quantizes a constant (weights), not an activation
    consumers: List[str]  #: 'Type name' of the ops it feeds
    levels: int
    low: float  #: lowest of its (per-channel) input lows
    high: float  #: highest of its input highs
    stats: Dict[str, float] = field(default_factory=dict)


def _weight_compression(node) -> Optional[np.ndarray]:
    """The dequantized weights if ``node`` is NNCF's int8 weight compression
    (``Multiply(Convert(int8 Constant), scale)``, named ``.../fq_weights_N``)."""
    if node.get_type_name() != 'Multiply' or '/fq_weights_' not in node.get_friendly_name():
        return None
    convert, scale = (node.input_value(i).get_node() for i in range(2))
    if convert.get_type_name() != 'Convert':
        convert, scale = scale, convert
    if convert.get_type_name() != 'Convert' or scale.get_type_name() != 'Constant':
        return None
    values = convert.input_value(0).get_node()
    if values.get_type_name() != 'Constant':
        return None
    return values.get_data().astype(np.float32) * scale.get_data().astype(np.float32)


def find_quantizers(int8_model) -> List[Quantizer]:
    """The quantizers of ``int8_model`` in topological order: its activation
    ``FakeQuantize`` nodes and NNCF's int8 weight compressions (``source``: the
    layer whose weights, ``source_port``: the layer's input)."""
    quantizers = []
    for node in int8_model.get_ordered_ops():
        consumers = [f'{target.get_node().get_type_name()} {target.get_node().get_friendly_name()}'
                     for target in node.output(0).get_target_inputs()] \
            if node.get_output_size() else []
        weights = _weight_compression(node)
        if weights is not None:
            target = next(iter(node.output(0).get_target_inputs()))
            layer = target.get_node()
            quantizers.append(Quantizer(
                name=node.get_friendly_name(), source=layer.get_friendly_name(),
                source_port=target.get_index(), source_type=layer.get_type_name(), weight=True,
                consumers=sorted(consumers), levels=256, low=float(weights.min()),
                high=float(weights.max())))
            continue
        if node.get_type_name() != 'FakeQuantize':
            continue
        source = node.input_value(0)
        producer = source.get_node()
        low = node.input_value(1).get_node().get_data()
        high = node.input_value(2).get_node().get_data()
        quantizers.append(Quantizer(
            name=node.get_friendly_name(), source=producer.get_friendly_name(),
            source_port=source.get_index(), source_type=producer.get_type_name(),
            weight=producer.get_type_name() == 'Constant', consumers=sorted(consumers),
            levels=int(node.get_levels()), low=float(np.min(low)), high=float(np.max(high))))
    return quantizers


def fp32_weights(fp32_model, quantizer: Quantizer,
                 fp32_ops: Optional[Dict[str, object]] = None) -> Optional[np.ndarray]:
    """The fp32 weights a weight quantizer replaces: the constant input
    ``source_port`` of the layer ``source`` of ``fp32_model``, if it is one
    (``fp32_ops``: its ops by name, when the caller has them)."""
    layer = (fp32_ops if fp32_ops is not None else _ops_by_name(fp32_model)).get(
        quantizer.source)
    if layer is None or layer.get_input_size() <= quantizer.source_port:
        return None
    node = layer.input_value(quantizer.source_port).get_node()
    return node.get_data() if node.get_type_name() == 'Constant' else None


def fake_quantize(x: np.ndarray, node) -> np.ndarray:
    """OpenVINO ``FakeQuantize`` semantics of ``node`` (its constant ranges) applied to ``x``."""
    in_low, in_high, out_low, out_high = (node.input_value(i).get_node().get_data().astype(
        np.float64) for i in range(1, 5))
    levels = node.get_levels()
    x = x.astype(np.float64)
    span = np.where(in_high > in_low, in_high - in_low, 1.0)
    steps = np.round((np.clip(x, in_low, in_high) - in_low) / span * (levels - 1))
    out = steps / (levels - 1) * (out_high - out_low) + out_low
    out = np.where(x <= np.minimum(in_low, in_high), out_low, out)
    return np.where(x > np.maximum(in_low, in_high), out_high, out)


def sqnr_db(signal: float, noise: float) -> float:
    """``10 log10(signal / noise)`` from sums of squares; inf without noise."""
    if noise <= 0:
        return float('inf')
    if signal <= 0:
        return float('-inf')
    return float(10 * np.log10(signal / noise))


def _ops_by_name(model) -> Dict[str, object]:
    """{friendly name: op} of the ops whose name is unique in ``model``."""
    ops, repeated = {}, set()
    for node in model.get_ops():
        name = node.get_friendly_name()
        if name in ops:
            repeated.add(name)
        ops[name] = node
    return {name: node for name, node in ops.items() if name not in repeated}


def _run_with_outputs(model, wanted: Sequence[tuple], inputs: Iterable[np.ndarray],
                      core=None):
    """For each input: the arrays of the (op name, port) outputs ``wanted`` of
    ``model`` (a clone gets them as extra results), in order."""
    import openvino as ov
    core = core or ov.Core()
    clone = model.clone()
    ops = _ops_by_name(clone)
    clone.add_outputs([ops[name].output(port) for name, port in wanted])
    # add_outputs skips outputs that are results already: find each one's position
    position = {}
    for i, output in enumerate(clone.outputs):  # the outputs of the Result nodes
        source = output.get_node().input_value(0)
        position.setdefault((source.get_node().get_friendly_name(), source.get_index()), i)
    compiled = core.compile_model(clone, 'CPU', F32)
    for x in inputs:
        result = compiled(x)
        yield [result[compiled.outputs[position[key]]] for key in wanted]


def bypass_quantizers(int8_model, names: Iterable[str], fp32_model=None):
    """A clone of ``int8_model`` in which the quantizers ``names`` are undone:
    an activation ``FakeQuantize`` passes its input through, an int8 weight
    compression is replaced by the fp32 weights of ``fp32_model`` (needed then)."""
    from openvino import opset13 as ops
    clone = int8_model.clone()
    nodes = _ops_by_name(clone)
    names = set(names)
    fp32_ops = _ops_by_name(fp32_model) if fp32_model is not None else None
    for quantizer in find_quantizers(clone):
        if quantizer.name not in names:
            continue
        node = nodes[quantizer.name]
        if node.get_type_name() == 'FakeQuantize':
            node.output(0).replace(node.input_value(0))
            continue
        weights = fp32_weights(fp32_model, quantizer, fp32_ops) if fp32_ops is not None \
            else None
        if weights is None:
            raise ValueError(f'the fp32 weights of {quantizer.source} are needed to undo '
                             f'{quantizer.name}: pass fp32_model')
        node.output(0).replace(ops.constant(weights).output(0))
    clone.validate_nodes_and_infer_types()
    return clone


def _first_outputs(model, inputs: Sequence[np.ndarray], core) -> List[np.ndarray]:
    compiled = core.compile_model(model, 'CPU', F32)
    return [compiled(x)[compiled.outputs[0]] for x in inputs]


def argmax_agreement(outputs: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> float:
    """Mean over inputs of the fraction of positions whose argmax over axis 1
    (the classes of a logit map or of a classifier's scores) equals the reference's."""
    return float(np.mean([(got.argmax(1) == want.argmax(1)).mean()
                          for got, want in zip(outputs, reference)]))


def layer_sqnr(fp32_model, int8_model, layers: Sequence[str],
               inputs: Sequence[np.ndarray], core=None) -> Dict[str, float]:
    """{layer name: SQNR (dB) of its int8 output 0 against fp32} for the ops
    ``layers`` present in both models."""
    fp32_ops, int8_ops = _ops_by_name(fp32_model), _ops_by_name(int8_model)
    layers = [name for name in layers if name in fp32_ops and name in int8_ops]
    result = {}
    for start in range(0, len(layers), OUTPUT_CHUNK):
        chunk = [(name, 0) for name in layers[start:start + OUTPUT_CHUNK]]
        signal, noise = np.zeros(len(chunk)), np.zeros(len(chunk))
        runs = zip(_run_with_outputs(fp32_model, chunk, inputs, core),
                   _run_with_outputs(int8_model, chunk, inputs, core))
        for want, got in runs:
            for i, (a, b) in enumerate(zip(want, got)):
                if a.shape != b.shape:
                    signal[i] = noise[i] = np.nan
                    continue
                a = a.astype(np.float64)
                signal[i] += np.square(a).sum()
                noise[i] += np.square(a - b).sum()
        result.update({name: sqnr_db(s, n) for (name, _), s, n in zip(chunk, signal, noise)
                       if np.isfinite(s)})
    return result


def _broadcasts(node, tensor: np.ndarray) -> bool:
    """Whether the ranges of the ``FakeQuantize`` ``node`` fit ``tensor``'s shape."""
    shape = node.input_value(1).get_node().get_data().shape
    try:
        return np.broadcast_shapes(shape, tensor.shape) == tensor.shape
    except ValueError:
        return False


def quantizer_statistics(fp32_model, int8_model, quantizers: Sequence[Quantizer],
                         inputs: Sequence[np.ndarray], core=None) -> None:
    """Fill ``stats`` of each quantizer from the fp32 tensors it quantizes on
    ``inputs``: ``sqnr_db`` (its own rounding and clipping), and for activations
    ``range`` (max |low|, |high|: the one per-tensor range), ``max_abs`` (of the
    tensor), ``clipped`` (fraction of elements outside the range),
    ``channel_median`` / ``channel_min`` (median / smallest channel max-abs as a
    fraction of the range), ``narrow_channels`` (fraction of channels using less
    than 1/16 of the range: 4 or fewer of the 8 bits) and ``channels``."""
    fp32_ops, int8_ops = _ops_by_name(fp32_model), _ops_by_name(int8_model)
    for quantizer in quantizers:
        if quantizer.weight:
            weights = fp32_weights(fp32_model, quantizer, fp32_ops)
            quantized = _weight_compression(int8_ops[quantizer.name])
            if weights is not None and quantized is not None \
                    and weights.size == quantized.size:
                error = quantized.reshape(weights.shape).astype(np.float64) - weights
                quantizer.stats['sqnr_db'] = sqnr_db(
                    np.square(weights.astype(np.float64)).sum(), np.square(error).sum())
    activations = [q for q in quantizers if not q.weight and q.source in fp32_ops]
    for start in range(0, len(activations), OUTPUT_CHUNK):
        chunk = activations[start:start + OUTPUT_CHUNK]
        wanted = [(q.source, q.source_port) for q in chunk]
        sums = [dict(signal=0.0, noise=0.0, clipped=0, count=0, channel_max=None)
                for _ in chunk]
        for tensors in _run_with_outputs(fp32_model, wanted, inputs, core):
            for quantizer, acc, tensor in zip(chunk, sums, tensors):
                node = int8_ops[quantizer.name]
                if not _broadcasts(node, tensor):
                    acc['count'] = -1  # not the same tensor in both models
                if acc['count'] < 0:
                    continue
                error = fake_quantize(tensor, node) - tensor
                acc['signal'] += float(np.square(tensor.astype(np.float64)).sum())
                acc['noise'] += float(np.square(error).sum())
                acc['clipped'] += int(((tensor < quantizer.low) | (tensor > quantizer.high)).sum())
                acc['count'] += tensor.size
                per_channel = (np.abs(tensor).reshape(tensor.shape[0], tensor.shape[1], -1)
                               .max(axis=(0, 2)) if tensor.ndim >= 2 else np.abs(tensor).max(
                                   keepdims=True))
                acc['channel_max'] = per_channel if acc['channel_max'] is None else np.maximum(
                    acc['channel_max'], per_channel)
        for quantizer, acc in zip(chunk, sums):
            if acc['count'] < 0:
                continue
            span = max(abs(quantizer.low), abs(quantizer.high)) or 1e-30
            channel = acc['channel_max'] / span
            quantizer.stats.update(
                sqnr_db=sqnr_db(acc['signal'], acc['noise']), range=span,
                max_abs=float(acc['channel_max'].max()),
                clipped=acc['clipped'] / max(acc['count'], 1),
                channel_median=float(np.median(channel)), channel_min=float(channel.min()),
                narrow_channels=float((channel < 1 / 16).mean()), channels=int(channel.size))


def rank_quantizers(fp32_model, int8_model, quantizers: Sequence[Quantizer],
                    candidates: Sequence[str], inputs: Sequence[np.ndarray],
                    reference: Sequence[np.ndarray], core=None) -> None:
    """For each quantizer named in ``candidates``: ``stats['agreement_alone']``
    (argmax agreement with ``reference`` when only it quantizes) and
    ``stats['agreement_without']`` (when every quantizer but it does)."""
    import openvino as ov
    core = core or ov.Core()
    names = [q.name for q in quantizers]
    for quantizer in quantizers:
        if quantizer.name not in candidates:
            continue
        alone = bypass_quantizers(int8_model, [n for n in names if n != quantizer.name],
                                  fp32_model)
        without = bypass_quantizers(int8_model, [quantizer.name], fp32_model)
        quantizer.stats['agreement_alone'] = argmax_agreement(
            _first_outputs(alone, inputs, core), reference)
        quantizer.stats['agreement_without'] = argmax_agreement(
            _first_outputs(without, inputs, core), reference)


def analyse_int8(fp32_model, int8_model, inputs: Sequence[np.ndarray],
                 top: int = 10, core=None) -> dict:
    """The whole diagnosis on ``inputs`` (arrays the models take): a dict with
    ``agreement`` (the int8 model against fp32), ``layers`` ([{name, type,
    sqnr_db}], fed by a quantizer, in topological order) and ``quantizers``
    (the :class:`Quantizer` fields as dicts, ``stats`` filled, the ``top``
    lowest-SQNR ones ranked by :func:`rank_quantizers`)."""
    import openvino as ov
    core = core or ov.Core()
    inputs = list(inputs)
    reference = _first_outputs(fp32_model, inputs, core)
    agreement = argmax_agreement(_first_outputs(int8_model, inputs, core), reference)
    quantizers = find_quantizers(int8_model)
    quantizer_names = {q.name for q in quantizers}
    layers = []
    for node in int8_model.get_ordered_ops():
        if any(node.input_value(i).get_node().get_friendly_name() in quantizer_names
               for i in range(node.get_input_size())):
            layers.append((node.get_friendly_name(), node.get_type_name()))
    sqnr = layer_sqnr(fp32_model, int8_model, [name for name, _ in layers], inputs, core)
    quantizer_statistics(fp32_model, int8_model, quantizers, inputs, core)
    ranked = sorted(quantizers, key=lambda q: q.stats.get('sqnr_db', float('inf')))[:top]
    rank_quantizers(fp32_model, int8_model, quantizers, [q.name for q in ranked], inputs,
                    reference, core)
    return dict(agreement=agreement,
                layers=[dict(name=name, type=kind, sqnr_db=sqnr[name])
                        for name, kind in layers if name in sqnr],
                quantizers=[asdict(q) for q in quantizers])

