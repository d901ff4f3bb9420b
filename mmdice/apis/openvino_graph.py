"""The ONNX graph of an mmdice export rewritten for OpenVINO's CPU plugin.

The CPU plugin runs convolutions channels-last but extension nodes only on
planar tensors, so each ``DiCEFuse`` node costs a layout conversion (Reorder)
on its input and one per consumer; the end of every ShuffleNet block (gate
product, concat, channel shuffle, and the next block's split) costs four
more passes. :func:`rewrite_for_openvino_cpu` rewrites the exported graph so
that the mmdice nodes work on channels-last tensors, (N, H, W, C), behind
``Transpose`` nodes that the plugin merges with its Reorders into free
reinterpretations (static shapes only, one consumer per Transpose):

* ``DiCEFuse`` gets ``layout='NHWC'``, and writes the gate's mean over
  (H, W) of its output as a second output (``with_mean=1``);
* the 3x3 stride-2 average pooling in front of a strided unit's DiCE unit
  moves into its ``DiCEFuse`` (``input_pool=1``: pooled as the rows are read),
  so that the stage's last tensor feeds the unit channels-last and the other
  branch's Transpose is its only consumer;
* ``Concat(left, branch * gate)`` -> channel shuffle (groups 2) -> the next
  block's two channel slices (equal parts, or a narrower left part where a
  block widens its input) becomes one ``ShuffleGatedConcat`` node that
  writes the two halves (or the whole shuffled tensor when no split follows);
  a half that feeds the next block's ``ShuffleGatedConcat`` stays channels-last.

Every rewrite is exact: the nodes compute the same values in another layout.
"""
import collections
import itertools
from typing import Dict, List, Optional

#: Permutations between (N, C, H, W) and (N, H, W, C).
TO_NHWC = [0, 2, 3, 1]
TO_NCHW = [0, 3, 1, 2]

#: Kernel sizes the channels-last DiCEFuse kernel takes (at the build size).
NHWC_KERNEL_SIZES = (3, 5)

#: Node types that keep the channel count of their first input.
CHANNEL_PRESERVING = ('PRelu', 'Relu', 'Add', 'Mul', 'Sigmoid', 'Clip', 'BatchNormalization')


class _Graph:
    """Producers, consumers and constant values of an ONNX graph being rewritten."""

    def __init__(self, model):
        from onnx import numpy_helper
        self.graph = model.graph
        self.constants = {init.name: numpy_helper.to_array(init)
                          for init in self.graph.initializer}
        for node in self.graph.node:
            if node.op_type == 'Constant' and node.attribute[0].name == 'value':
                self.constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        self.graph_outputs = {output.name for output in self.graph.output}
        self.names = itertools.count()
        self.index()

    def index(self) -> None:
        self.producer = {}
        self.consumers = collections.defaultdict(list)
        for node in self.graph.node:
            for name in node.output:
                self.producer[name] = node
            for position, name in enumerate(node.input):
                self.consumers[name].append((node, position))

    def constant(self, name: str):
        return self.constants.get(name)

    def attribute(self, node, name: str, default=None):
        import onnx
        for attribute in node.attribute:
            if attribute.name == name:
                return onnx.helper.get_attribute_value(attribute)
        return default

    def fresh(self, stem: str) -> str:
        return f'mmdice_{stem}_{next(self.names)}'

    def transpose(self, source: str, perm: List[int]) -> str:
        """A new Transpose of ``source`` (appended; :func:`_finish` orders it)."""
        import onnx
        output = self.fresh('nhwc' if perm == TO_NHWC else 'nchw')
        self.graph.node.append(onnx.helper.make_node('Transpose', [source], [output], perm=perm))
        return output

    def channels(self, name: str) -> Optional[int]:
        """Channels of the 4-D tensor ``name`` when a Conv's weight tells them."""
        node = self.producer.get(name)
        while node is not None and node.op_type in CHANNEL_PRESERVING:
            node = self.producer.get(node.input[0])
        if node is None or node.op_type != 'Conv':
            return None
        weight = self.constant(node.input[1])
        return None if weight is None else int(weight.shape[0])


def _finish(graph: _Graph) -> None:
    """Drop the nodes nothing consumes and put the rest in topological order."""
    while True:
        graph.index()
        live = [node for node in graph.graph.node
                if any(graph.consumers.get(name) or name in graph.graph_outputs
                       for name in node.output)]
        if len(live) == len(graph.graph.node):
            break
        del graph.graph.node[:]
        graph.graph.node.extend(live)
    available = {value.name for value in graph.graph.input} | set(graph.constants)
    available.add('')
    pending, ordered = list(graph.graph.node), []
    while pending:
        ready = [node for node in pending if all(name in available for name in node.input)]
        if not ready:
            raise RuntimeError('the rewritten ONNX graph has a cycle or a missing input')
        ids = {id(node) for node in ready}
        pending = [node for node in pending if id(node) not in ids]
        for node in ready:
            available.update(node.output)
        ordered.extend(ready)
    del graph.graph.node[:]
    graph.graph.node.extend(ordered)
    graph.index()


def _route(graph: _Graph, old: str, nhwc: str, rewires_itself) -> None:
    """Point every consumer of ``old`` (an NCHW tensor) at ``nhwc`` (the same
    values channels-last): directly where ``rewires_itself(node, position)``
    does so, else through a Transpose of its own (one consumer each, so that
    the CPU plugin can merge it with its Reorder)."""
    import onnx
    for node, position in list(graph.consumers.get(old, [])):
        if not rewires_itself(node, position):
            node.input[position] = graph.transpose(nhwc, TO_NCHW)
    if old in graph.graph_outputs:
        graph.graph.node.append(onnx.helper.make_node('Transpose', [nhwc], [old], perm=TO_NCHW))


def _spatial_mean_of(graph: _Graph, dice_fuse):
    """A :func:`_route` rule for the output of ``dice_fuse`` (NHWC now): the
    first ReduceMean over (H, W) without kept axes becomes the node's second
    output (``with_mean=1``, the means computed as the output is written)."""

    def rewires_itself(node, position):
        axes = graph.constant(node.input[1]) if len(node.input) > 1 else None
        if node.op_type != 'ReduceMean' or position != 0 or axes is None \
                or sorted(int(a) % 4 for a in axes.reshape(-1)) != [2, 3] \
                or graph.attribute(node, 'keepdims', 1) != 0 or len(dice_fuse.output) > 1:
            return False
        import onnx
        dice_fuse.output.append(node.output[0])
        dice_fuse.attribute.append(onnx.helper.make_attribute('with_mean', 1))
        graph.graph.node.remove(node)
        return True

    return rewires_itself


def _nhwc_input(graph: _Graph, name: str) -> str:
    """``name`` channels-last: the source of a Transpose to NCHW, else a new Transpose."""
    node = graph.producer.get(name)
    if node is not None and node.op_type == 'Transpose' \
            and list(graph.attribute(node, 'perm')) == TO_NCHW:
        return node.input[0]
    return graph.transpose(name, TO_NHWC)


def _nhwc_dice_fuse(graph: _Graph) -> int:
    """DiCEFuse nodes at their build size -> layout NHWC; returns their number."""
    count = 0
    for node in list(graph.graph.node):
        if node.op_type != 'DiCEFuse' or graph.attribute(node, 'layout', b'NCHW') != b'NCHW':
            continue
        weight_depth, weight_height, weight_width = (graph.constant(name)
                                                     for name in node.input[1:4])
        if any(weight is None for weight in (weight_depth, weight_height, weight_width)) \
                or weight_height.shape[1] != 1 or weight_width.shape[1] != 1 \
                or weight_depth.shape[-1] not in NHWC_KERNEL_SIZES:
            continue
        node.input[0] = _nhwc_input(graph, node.input[0])
        for attribute in node.attribute:
            if attribute.name == 'layout':
                attribute.s = b'NHWC'
        old, nhwc = node.output[0], graph.fresh('dice_fuse')
        node.output[0] = nhwc
        _route(graph, old, nhwc, _spatial_mean_of(graph, node))
        count += 1
    _finish(graph)
    return count


def _is_stride_two_pool(graph: _Graph, node) -> bool:
    """Whether ``node`` is AveragePool(3x3, stride 2, padding 1 counted, floor)."""
    return node is not None and node.op_type == 'AveragePool' \
        and list(graph.attribute(node, 'kernel_shape', [])) == [3, 3] \
        and list(graph.attribute(node, 'strides', [])) == [2, 2] \
        and list(graph.attribute(node, 'pads', [])) == [1, 1, 1, 1] \
        and graph.attribute(node, 'count_include_pad', 0) == 1 \
        and graph.attribute(node, 'ceil_mode', 0) == 0 \
        and graph.attribute(node, 'auto_pad', b'NOTSET') == b'NOTSET'


def _pooled_dice_fuse(graph: _Graph) -> int:
    """NHWC DiCEFuse nodes behind a stride-2 average pooling -> ``input_pool=1``
    on the pooling's input; returns their number."""
    import onnx
    count = 0
    for node in list(graph.graph.node):
        if node.op_type != 'DiCEFuse' or graph.attribute(node, 'layout') != b'NHWC':
            continue
        to_nhwc = graph.producer.get(node.input[0])
        if to_nhwc is None or to_nhwc.op_type != 'Transpose' \
                or list(graph.attribute(to_nhwc, 'perm')) != TO_NHWC:
            continue
        pool = graph.producer.get(to_nhwc.input[0])
        if not _is_stride_two_pool(graph, pool):
            continue
        node.input[0] = _nhwc_input(graph, pool.input[0])
        node.attribute.append(onnx.helper.make_attribute('input_pool', 1))
        count += 1
    _finish(graph)
    return count


def _sole_consumer(graph: _Graph, name: str, op_type: str):
    consumers = graph.consumers.get(name, [])
    if len(consumers) != 1 or name in graph.graph_outputs or consumers[0][0].op_type != op_type:
        return None
    return consumers[0][0]


def _channel_slice(graph: _Graph, node):
    """(start, end) of a Slice of the channel axis with unit steps, else None."""
    if node.op_type != 'Slice' or len(node.input) < 4:
        return None
    starts, ends, axes = (graph.constant(name) for name in node.input[1:4])
    steps = graph.constant(node.input[4]) if len(node.input) > 4 and node.input[4] else None
    if starts is None or ends is None or axes is None or axes.size != 1 \
            or int(axes.reshape(-1)[0]) % 4 != 1 \
            or (steps is not None and int(steps.reshape(-1)[0]) != 1):
        return None
    return int(starts.reshape(-1)[0]), int(ends.reshape(-1)[0])


def _block_end(graph: _Graph, concat):
    """(left, branch, gate or None, shuffle output, channels C) when ``concat``
    starts ``channel_shuffle(cat(left, branch * gate), 2)`` (or of
    ``cat(left, branch)``) with 2C channels in all, the branch's known from its
    convolution (the left part takes the rest: a block that widens its input
    has a narrower left part), the gate (N, R, 1, 1) from an Unsqueeze; else None."""
    if concat.op_type != 'Concat' or len(concat.input) != 2 \
            or graph.attribute(concat, 'axis') not in (1, -3):
        return None
    left, branch = concat.input
    gate = None
    multiply = graph.producer.get(branch)
    if multiply is not None and multiply.op_type == 'Mul' and len(graph.consumers[branch]) == 1:
        gates = [name for name in multiply.input
                 if getattr(graph.producer.get(name), 'op_type', None) == 'Unsqueeze']
        if len(gates) == 1:
            gate = gates[0]
            branch = multiply.input[1] if multiply.input[0] == gate else multiply.input[0]
    grouped = _sole_consumer(graph, concat.output[0], 'Reshape')
    swap = grouped and _sole_consumer(graph, grouped.output[0], 'Transpose')
    merged = swap and _sole_consumer(graph, swap.output[0], 'Reshape')
    if not merged or list(graph.attribute(swap, 'perm')) != [0, 2, 1, 3, 4]:
        return None
    groups_shape = graph.constant(grouped.input[1])
    if groups_shape is None or groups_shape.size != 5 or int(groups_shape[1]) != 2:
        return None
    channels = int(groups_shape[2])
    branch_channels = graph.channels(branch)
    if branch_channels is None or not 0 < branch_channels < 2 * channels:
        return None
    return left, branch, gate, merged.output[0], channels


def _shuffle_gated_concat(graph: _Graph) -> int:
    """Block ends -> ShuffleGatedConcat nodes; returns their number."""
    import onnx

    from mmdice.ops.onnx import MMDICE_DOMAIN
    count = 0
    for concat in list(graph.graph.node):
        if concat.op_type != 'Concat':
            continue
        graph.index()  # the previous block end's rewiring changed producers and consumers
        matched = _block_end(graph, concat)
        if matched is None:
            continue
        left, branch, gate, shuffled, channels = matched
        slices = {_channel_slice(graph, node): node for node, _ in graph.consumers[shuffled]}
        halves = len(graph.consumers[shuffled]) == 2 and shuffled not in graph.graph_outputs \
            and (0, channels) in slices and any(
                key is not None and key[0] == channels and key[1] >= 2 * channels
                for key in slices)
        inputs = [_nhwc_input(graph, left), graph.transpose(branch, TO_NHWC)]
        inputs += [] if gate is None else [gate]
        if halves:
            upper = next(node for key, node in slices.items()
                         if key is not None and key[0] == channels)
            targets = [slices[(0, channels)].output[0], upper.output[0]]
        else:
            targets = [shuffled]
        outputs = [graph.fresh('shuffled') for _ in targets]
        graph.graph.node.append(onnx.helper.make_node(
            'ShuffleGatedConcat', inputs, outputs, domain=MMDICE_DOMAIN,
            num_outputs=len(outputs)))
        for old, nhwc in zip(targets, outputs):
            _route(graph, old, nhwc, lambda node, position: False)
        count += 1
    _finish(graph)
    return count


def rewrite_for_openvino_cpu(model) -> Dict[str, int]:
    """Rewrite the ONNX ``model`` (an mmdice export with ``mmdice`` domain
    nodes, :func:`~mmdice.apis.export_onnx` with ``mmdice_domain=True``) in
    place as the module docstring says; returns the number of rewritten
    ``DiCEFuse`` nodes, of the ``ShuffleGatedConcat`` nodes made and of the
    DiCEFuse nodes that took their average pooling in."""
    from mmdice.ops.onnx import register_mmdice_schemas
    register_mmdice_schemas()
    graph = _Graph(model)
    return {'DiCEFuse': _nhwc_dice_fuse(graph),
            'ShuffleGatedConcat': _shuffle_gated_concat(graph),
            'pooled DiCEFuse': _pooled_dice_fuse(graph)}
