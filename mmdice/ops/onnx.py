"""ONNX translations of the mmdice ops through standard operators (opset 18).

For ``torch.onnx.export(..., dynamo=True, custom_translation_table=
onnx_translation_table())``. Needs onnxscript, imported only here (importing
``mmdice.ops`` does not import this module).

The height- and width-wise DimConv branches become depth-wise ``Conv``s on
transposed tensors: (N, C, H, W) -> (N, H, C, W) puts the rows on the channel
axis with the (channel, width) kernel plane behind them, (N, W, H, C) the
columns with the (height, channel) plane. In the fused DiCE op the per-channel
affine terms and PReLU of each branch are applied in that transposed layout
(broadcast over the channel axis there), so each branch costs one transpose
in and one out. DimConv and the fused op are only called at their build size
(other sizes run the standard-operator resampling path, which exports as it
is, followed by ``mmdice::dice_fuse_epilogue`` in the deploy form).
"""
from typing import Dict

#: onnxruntime runs depth-wise Convs whose channel count is a multiple of its
#: NCHWc block (16 floats with AVX-512, 8 with AVX2) with a direct kernel, others
#: through im2col: at 32x278x14x14 float32, 2 threads, 6.3-13.9 ms against
#: 1.9-2.2 ms for 288 channels (onnxruntime 1.32). So depth-wise Convs get zero
#: channels up to a multiple of 16 and the result is sliced back.
CHANNEL_BLOCK = 16


def _padding(kernel_size: int, dilation: int):
    pad = dilation * (kernel_size - 1) // 2
    return [pad, pad, pad, pad]


#: ONNX custom domain of the nodes that the mmdice OpenVINO extension reads
#: (:mod:`mmdice.ops.openvino`), and its version.
MMDICE_DOMAIN = 'mmdice'
MMDICE_DOMAIN_VERSION = 1


#: Inputs of the ``mmdice.DiCEFuse`` node, in order (mmdice::dice_fuse's tensors).
DICE_FUSE_INPUTS = ('x', 'weight_depth', 'weight_height', 'weight_width', 'branch_scale',
                    'branch_bias', 'branch_slope', 'fuse_weight', 'fuse_bias', 'out_slope')


def register_mmdice_schemas() -> None:
    """Register the ONNX schemas of ``mmdice.DiCEFuse`` and ``mmdice.ShuffleGatedConcat``
    (once per process; :mod:`mmdice.apis.openvino_graph` writes the latter), which
    onnxscript and the ONNX checker need for a custom-domain node."""
    import onnx
    if onnx.defs.has('DiCEFuse', MMDICE_DOMAIN):
        return
    tensor = onnx.defs.OpSchema.FormalParameter
    onnx.defs.register_schema(onnx.defs.OpSchema(
        'ShuffleGatedConcat', MMDICE_DOMAIN, MMDICE_DOMAIN_VERSION,
        doc='channel_shuffle(cat(left, branch * gate), 2) of (N, H, W, L) left and (N, H, W, R) '
        'branch (L + R = 2C even), gate (N, R, 1, 1) or none; one (N, H, W, 2C) output or its '
        'two channel halves.',
        inputs=[tensor('left', 'T'), tensor('branch', 'T'),
                tensor('gate', 'T', param_option=onnx.defs.OpSchema.FormalParameterOption.Optional)],
        outputs=[tensor('y', 'T', param_option=onnx.defs.OpSchema.FormalParameterOption.Variadic,
                        min_arity=1)],
        type_constraints=[('T', ['tensor(float)'], 'float32 tensors')],
        attributes=[onnx.defs.OpSchema.Attribute(
            'num_outputs', onnx.defs.OpSchema.AttrType.INT, 'number of outputs: 1 or 2')]))
    schema = onnx.defs.OpSchema(
        'DiCEFuse', MMDICE_DOMAIN, MMDICE_DOMAIN_VERSION,
        doc='The fused DiCE op of mmdice (mmdice.ops.dice_fuse): (N, C, H, W) -> (N, C, H, W).',
        inputs=[onnx.defs.OpSchema.FormalParameter(name, 'T') for name in DICE_FUSE_INPUTS],
        outputs=[onnx.defs.OpSchema.FormalParameter('y', 'T')],
        type_constraints=[('T', ['tensor(float)'], 'float32 tensors')],
        attributes=[onnx.defs.OpSchema.Attribute(
            'dilation', onnx.defs.OpSchema.AttrType.INTS,
            'dilation of the depth-, height- and width-wise DimConv branches'),
                    onnx.defs.OpSchema.Attribute(
            'layout', onnx.defs.OpSchema.AttrType.STRING,
            'memory layout of x and y: NCHW, or NHWC (x and y are then (N, H, W, C))'),
                    onnx.defs.OpSchema.Attribute(
            'with_mean', onnx.defs.OpSchema.AttrType.INT,
            '1: a second output (written by mmdice.apis.openvino_graph, after onnxscript), '
            'the means of y over (H, W) as (N, C)'),
                    onnx.defs.OpSchema.Attribute(
            'input_pool', onnx.defs.OpSchema.AttrType.INT,
            '1: the unit runs on x average-pooled (3x3, stride 2, padding 1 counted), pooled as '
            'it is read (written by mmdice.apis.openvino_graph)')])
    onnx.defs.register_schema(schema)


def onnx_translation_table(slopes_at_most_one: bool = False, mmdice_domain: bool = False) -> Dict:
    """{torch op overload: onnxscript function} for mmdice::dim_conv, mmdice::dice_fuse,
    mmdice::dice_fuse_epilogue and aten::prelu.

    ``mmdice_domain``: mmdice::dice_fuse, and mmdice_openvino::dice_fuse (its
    banded form, :func:`mmdice.ops.dice_fuse.dice_fuse_banded`), become one
    ``mmdice.DiCEFuse`` node (the op's inputs in its order, the attribute
    ``dilation``: three ints; ``layout`` 'NCHW', which
    :func:`mmdice.apis.openvino_graph.rewrite_for_openvino_cpu` may turn
    channels-last), which only runtimes with the mmdice extension run
    (OpenVINO, :mod:`mmdice.ops.openvino`), and PReLU stays ``PRelu``, which
    OpenVINO's CPU plugin can fuse into the preceding convolution.

    onnxruntime's ``PRelu`` with per-channel slopes takes 5-7x the time of a
    broadcast ``Mul`` (32x278x14x14 float32, 2 threads: 7-12 ms against 1.0-1.7 ms
    for ``Max(x, a * x)``, measured with onnxruntime 1.32), so PReLU is written
    as ``Max(x, a * x)``, exact when every slope a <= 1 (``slopes_at_most_one``,
    see :func:`prelu_slopes_at_most_one`), else as ``Relu(x) + a * Min(x, 0)``.
    """
    import torch
    from onnxscript import opset18 as op
    from onnxscript.values import Opset
    from onnxscript.function_libs.torch_lib.ops.core import aten_convolution

    from . import extension  # noqa: F401  (loads mmdice._ext, which defines the ops)

    def prelu(x, slope):
        if mmdice_domain:
            return op.PRelu(x, slope)
        if slopes_at_most_one:
            return op.Max(x, op.Mul(x, slope))
        zero = op.CastLike(op.Constant(value_float=0.0), x)
        return op.Add(op.Relu(x), op.Mul(op.Min(x, zero), slope))

    def aten_prelu(x, weight):
        rank = len(x.shape)
        return prelu(x, op.Reshape(weight, op.Constant(value_ints=[-1] + [1] * (rank - 2))))

    def depthwise(x, weight, bias, channels, pads, strides, dilations):
        """Depth-wise Conv of ``channels`` channels, padded to CHANNEL_BLOCK."""
        extra = -channels % CHANNEL_BLOCK
        attributes = dict(pads=pads, strides=strides, dilations=dilations)
        if not extra:
            return op.Conv(x, weight, bias, group=channels, **attributes)
        axis0, axis1 = op.Constant(value_ints=[0]), op.Constant(value_ints=[1])
        tail = op.Constant(value_ints=[0, extra])
        y = op.Conv(op.Pad(x, tail, None, axis1), op.Pad(weight, tail, None, axis0),
                    None if bias is None else op.Pad(bias, tail, None, axis0),
                    group=channels + extra, **attributes)
        return op.Slice(y, axis0, op.Constant(value_ints=[channels]), axis1)

    def conv(x, weight, dilation, shape):
        """Depth-wise conv of ``x`` with ``weight`` of ``shape`` (groups, 1, k, k)."""
        return depthwise(x, weight, None, shape[0], _padding(shape[2], dilation), [1, 1],
                         [dilation, dilation])

    def aten_conv(x, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                  transposed=False, output_padding=(0, 0), groups=1):
        shape = weight.shape
        if (not transposed and len(shape) == 4 and groups > 1 and shape[0] == groups
                and shape[1] == 1 and groups % CHANNEL_BLOCK):
            return depthwise(x, weight, bias, groups, [*padding, *padding], list(stride),
                             list(dilation))
        return aten_convolution(x, weight, bias, stride, padding, dilation, transposed,
                                output_padding, groups)

    def branches(x, weight_depth, weight_height, weight_width, dilation):
        """The three branch outputs, the spatial ones still transposed:
        depth (N, C, H, W), height (N, H, C, W), width (N, W, C, H)."""
        depth = conv(x, weight_depth, dilation[0], weight_depth.shape)
        height = conv(op.Transpose(x, perm=[0, 2, 1, 3]), weight_height, dilation[1],
                      weight_height.shape)
        # (N, W, C, H) with the kernel's (height, channel) axes swapped: both
        # transposes then move whole (C * H, W) matrices, which is faster than
        # the (N, W, H, C) layout of the reference.
        width = conv(op.Transpose(x, perm=[0, 3, 1, 2]),
                     op.Transpose(weight_width, perm=[0, 1, 3, 2]), dilation[2], weight_width.shape)
        return depth, height, width

    def column(values, index, shape):
        """values[:, index] of a (C, 3) initializer, reshaped to broadcast as ``shape``."""
        picked = op.Gather(values, op.Constant(value_int=index), axis=1)
        return op.Reshape(picked, op.Constant(value_ints=shape))

    def dim_conv(x, weight_depth, weight_height, weight_width, dilation):
        depth, height, width = branches(x, weight_depth, weight_height, weight_width, dilation)
        height = op.Transpose(height, perm=[0, 2, 1, 3])
        width = op.Transpose(width, perm=[0, 2, 3, 1])
        stacked = op.Concat(op.Unsqueeze(depth, op.Constant(value_ints=[2])),
                            op.Unsqueeze(height, op.Constant(value_ints=[2])),
                            op.Unsqueeze(width, op.Constant(value_ints=[2])), axis=2)
        # (N, C, 3, H, W) -> (N, 3C, H, W): channel 3c + g is branch g of channel c.
        shape = op.Shape(depth)
        channels3 = op.Mul(op.Slice(shape, op.Constant(value_ints=[1]),
                                    op.Constant(value_ints=[2])), op.Constant(value_ints=[3]))
        new_shape = op.Concat(op.Slice(shape, op.Constant(value_ints=[0]),
                                       op.Constant(value_ints=[1])), channels3,
                              op.Slice(shape, op.Constant(value_ints=[2]),
                                       op.Constant(value_ints=[4])), axis=0)
        return op.Reshape(stacked, new_shape)

    def dice_fuse(x, weight_depth, weight_height, weight_width, dilation, branch_scale,
                  branch_bias, branch_slope, fuse_weight, fuse_bias, out_slope, channels_last):
        del channels_last  # a memory layout, not part of the ONNX graph
        depth, height, width = branches(x, weight_depth, weight_height, weight_width, dilation)
        # Channel axis: 1 for depth (N, C, H, W), 2 for height (N, H, C, W) and width (N, W, C, H).
        layouts = ((depth, [-1, 1, 1], None), (height, [-1, 1], [0, 2, 1, 3]),
                   (width, [-1, 1], [0, 2, 3, 1]))
        total = None
        for index, (value, shape, perm) in enumerate(layouts):
            value = op.Add(op.Mul(value, column(branch_scale, index, shape)),
                           column(branch_bias, index, shape))
            value = prelu(value, column(branch_slope, index, shape))
            value = op.Mul(value, column(fuse_weight, index, shape))
            if perm is not None:
                value = op.Transpose(value, perm=perm)
            total = value if total is None else op.Add(total, value)
        total = op.Add(total, op.Reshape(fuse_bias, op.Constant(value_ints=[-1, 1, 1])))
        return prelu(total, op.Reshape(out_slope, op.Constant(value_ints=[-1, 1, 1])))

    register_mmdice_schemas()
    mmdice_op = Opset(MMDICE_DOMAIN, MMDICE_DOMAIN_VERSION)

    def dice_fuse_custom(x, weight_depth, weight_height, weight_width, dilation, branch_scale,
                         branch_bias, branch_slope, fuse_weight, fuse_bias, out_slope,
                         channels_last):
        del channels_last  # a memory layout, not part of the ONNX graph
        return dice_fuse_node(x, weight_depth, weight_height, weight_width, dilation,
                              branch_scale, branch_bias, branch_slope, fuse_weight, fuse_bias,
                              out_slope)

    def dice_fuse_node(x, weight_depth, weight_height, weight_width, dilation, *coefficients):
        return mmdice_op.DiCEFuse(x, weight_depth, weight_height, weight_width, *coefficients,
                                  dilation=[int(d) for d in dilation], layout='NCHW')

    def dice_fuse_epilogue(dim_output, branch_scale, branch_bias, branch_slope, fuse_weight,
                           fuse_bias, out_slope):
        # The training form with folded norms: affine + PReLU over the 3C interleaved
        # channels, then the grouped 1x1 conv (3 -> 1 per channel) and PReLU.
        per_channel = op.Constant(value_ints=[-1, 1, 1])
        value = op.Add(op.Mul(dim_output, op.Reshape(branch_scale, per_channel)),
                       op.Reshape(branch_bias, per_channel))
        value = prelu(value, op.Reshape(branch_slope, per_channel))
        weight = op.Reshape(fuse_weight, op.Constant(value_ints=[-1, 3, 1, 1]))
        value = op.Conv(value, weight, fuse_bias, group=fuse_weight.shape[0])
        return prelu(value, op.Reshape(out_slope, per_channel))

    table = {
        torch.ops.mmdice.dim_conv.default: dim_conv,
        torch.ops.mmdice.dice_fuse.default: dice_fuse_custom if mmdice_domain else dice_fuse,
        torch.ops.mmdice.dice_fuse_epilogue.default: dice_fuse_epilogue,
        torch.ops.aten.prelu.default: aten_prelu,
        torch.ops.aten.convolution.default: aten_conv,
    }
    if mmdice_domain:
        table[torch.ops.mmdice_openvino.dice_fuse.default] = dice_fuse_node
    return table


def prelu_slopes_at_most_one(model) -> bool:
    """Whether every PReLU slope of ``model`` (nn.PReLU layers and the fused DiCE
    ops' ``branch_slope`` / ``out_slope``) is at most 1."""
    from torch import nn

    from .dice_fuse import DimConvFuse2d
    slopes = []
    for module in model.modules():
        if isinstance(module, nn.PReLU):
            slopes.append(module.weight)
        elif isinstance(module, DimConvFuse2d):
            slopes += [module.branch_slope, module.out_slope]
    return all(bool((slope <= 1).all()) for slope in slopes) if slopes else True
