"""Benchmark the fused DimConv op against the authors' unfused DimConv.

The reference path is DimConv the way the EdgeNets DICE unit computes it: three
grouped ``nn.Conv2d`` (depth-wise on x, row-wise on ``x.transpose(1, 2)``,
column-wise on ``x.transpose(1, 3)``, each transpose materialised with
``.contiguous()`` and transposed back the same way), ``torch.cat`` of
[D, H, W], then ``Shuffle(3)`` (view / transpose / contiguous); the unit's
BN + PReLU, which is not part of DimConv, is left out. The "3x dw"
column times three plain depth-wise 3x3 convolutions of the same input, a
floor for what three cuDNN/oneDNN-style convolutions cost without any copies.

Shapes are DiCENet's DimConv inputs at 224x224: (C, H, W) of the three stages
for widen factor 1.0 and 2.4. With ``--input-size`` the units stay built for
224x224 (28/14/7) but run on the feature sizes of larger images (SSD at 300:
38/19/10, 512: 64/32/16; segmentation at 256: 32/16/8, 384: 48/24/12), where
both paths resample as the authors' DICE unit does (adaptive average pooling
down to the build size, bilinear ``align_corners=True`` back up). Times are
medians over ``--repeat`` runs after ``--warmup`` runs, in milliseconds.

Example::

    python benchmarks/bench_dim_conv.py --batch 1 32 --repeat 10 --markdown
    python benchmarks/bench_dim_conv.py --batch 32 --system-malloc  # glibc's defaults
    python benchmarks/bench_dim_conv.py --batch 32 --input-size 300 512 256 384
    python benchmarks/bench_dim_conv.py --device cuda --dtype float16 --peak-gbps 3350
    python benchmarks/bench_dim_conv.py --batch 32 --json dim_conv.json  # rows as JSON too
"""
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from benchmark_utils import (apply_settings, benchmark_parser, format_table,
                             forward_backward_fields, machine_lines, positive_int,
                             time_interleaved, write_json)
from mmdice.ops.dim_conv import EXT_AVAILABLE, dim_conv

# (C, H, W) of the DimConv inputs of DiCENet's three stages, widen factor 1.0 and 2.4.
SHAPES = ((116, 28, 28), (232, 14, 14), (464, 7, 7), (278, 28, 28), (556, 14, 14),
          (1112, 7, 7))
# The image size the units of SHAPES are built for.
BUILD_INPUT_SIZE = 224
DTYPES = dict(float32=torch.float32, float64=torch.float64, float16=torch.float16,
              bfloat16=torch.bfloat16)


class Shuffle(nn.Module):
    """The authors' channel shuffle (view, transpose, contiguous, view)."""

    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        batch, channels, height, width = x.size()
        x = x.view(batch, self.groups, channels // self.groups, height, width)
        x = torch.transpose(x, 1, 2).contiguous()
        return x.view(batch, -1, height, width)


def resize(x, size):
    """The authors' resampling: bilinear (align_corners=True) up, adaptive average pool down."""
    if x.shape[2:] == size:
        return x
    if x.shape[2] < size[0] or x.shape[3] < size[1]:
        return F.interpolate(x, size=size, mode='bilinear', align_corners=True)
    return F.adaptive_avg_pool2d(x, size)


class ReferenceDimConv(nn.Module):
    """DimConv of the authors' DICE unit built for (height, width) (k=3, dilation 1)."""

    def __init__(self, channels, height, width):
        super().__init__()
        self.height = height
        self.width = width
        self.conv_channel = nn.Conv2d(channels, channels, 3, padding=1, groups=channels,
                                      bias=False)
        self.conv_height = nn.Conv2d(height, height, 3, padding=1, groups=height, bias=False)
        self.conv_width = nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False)
        self.vol_shuffle = Shuffle(3)

    def forward(self, x):
        _, _, height, width = x.shape
        out_ch_wise = self.conv_channel(x)
        x_h_wise = resize(x, (self.height, width)).transpose(1, 2).contiguous()
        out_h_wise = self.conv_height(x_h_wise).transpose(1, 2).contiguous()
        out_h_wise = resize(out_h_wise, (height, width))
        x_w_wise = resize(x, (height, self.width)).transpose(1, 3).contiguous()
        out_w_wise = self.conv_width(x_w_wise).transpose(1, 3).contiguous()
        out_w_wise = resize(out_w_wise, (height, width))
        outcat = torch.cat((out_ch_wise, out_h_wise, out_w_wise), 1)
        return self.vol_shuffle(outcat)


class ThreeDepthwise(nn.Module):
    """Three plain depth-wise 3x3 convolutions of x (no copies): a floor."""

    def __init__(self, channels):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
            for _ in range(3))

    def forward(self, x):
        return [conv(x) for conv in self.convs]


class FusedDimConv(nn.Module):
    """The fused op with the reference module's weights."""

    def __init__(self, reference):
        super().__init__()
        self.reference = reference

    def forward(self, x):
        ref = self.reference
        return dim_conv(x, ref.conv_channel.weight, ref.conv_height.weight,
                        ref.conv_width.weight)


def forward_backward(module, x, grads):
    """Forward and the gradients of x and of all weights (nothing accumulates in .grad)."""
    outputs = module(x)
    if isinstance(outputs, torch.Tensor):
        outputs = [outputs]
    return torch.autograd.grad(outputs, [x, *module.parameters()], grads)


# Largest error of the fused results, relative to max(1, largest reference magnitude).
TOLERANCES = {torch.float64: 1e-10, torch.float32: 1e-4, torch.float16: 1e-2,
              torch.bfloat16: 5e-2}


def check_fused_matches_reference(fused, reference, x, grad_output):
    """Raise AssertionError unless the fused output and the gradients of x and
    of the three weights match the reference's: a benchmark of a wrong kernel
    must not print a table."""
    tolerance = TOLERANCES[x.dtype]
    with torch.no_grad():
        results = {'output': (fused(x), reference(x))}
    fused_grads = forward_backward(fused, x, [grad_output])
    reference_grads = forward_backward(reference, x, [grad_output])
    for name, fused_grad, reference_grad in zip(
            ('grad_input', 'grad_weight_depth', 'grad_weight_height', 'grad_weight_width'),
            fused_grads, reference_grads):
        results[name] = (fused_grad, reference_grad)
    for name, (actual, expected) in results.items():
        scale = max(1.0, expected.abs().max().item())
        error = (actual.double() - expected.double()).abs().max().item() / scale
        if not error <= tolerance:
            raise AssertionError(f'fused {name} differs from the reference for input '
                                 f'{tuple(x.shape)}: relative error {error:.2e} > {tolerance}')


def run_size(build_size, input_size):
    """Feature size at the stride where a 224x224 input has ``build_size``: the input
    halved (rounding up, as stride-2 convolutions with padding do) log2(224 / build) times."""
    size = input_size
    for _ in range((BUILD_INPUT_SIZE // build_size).bit_length() - 1):
        size = (size + 1) // 2
    return size


def time_shape(batch, shape, dtype, device, warmup, repeat, input_size=BUILD_INPUT_SIZE):
    """The row of one (batch, shape, input size): median ms of the reference, the
    fused op and the 3x depth-wise floor, forward alone and forward+backward,
    the fused op's speed-ups and the bytes it moves; after checking the fused
    results against the reference's."""
    channels, build_height, build_width = shape
    height, width = run_size(build_height, input_size), run_size(build_width, input_size)
    reference = ReferenceDimConv(channels, build_height, build_width).to(device, dtype)
    fused = FusedDimConv(reference)
    floor = ThreeDepthwise(channels).to(device, dtype)
    x = torch.randn(batch, channels, height, width, device=device, dtype=dtype)
    x_grad = x.clone().requires_grad_()
    grad_cat = torch.randn(batch, 3 * channels, height, width, device=device, dtype=dtype)
    check_fused_matches_reference(fused, reference, x_grad, grad_cat)
    grad_split = list(grad_cat.split(channels, dim=1))
    modules = dict(ref=(reference, [grad_cat]), fused=(fused, [grad_cat]),
                   dw=(floor, grad_split))
    row = dict(batch=batch, channels=channels, height=height, width=width,
               build_height=build_height, build_width=build_width)
    with torch.no_grad():
        forward_times = time_interleaved({name: partial(module, x)
                                          for name, (module, _) in modules.items()},
                                         warmup, repeat, device)
    training_times = time_interleaved({name: partial(forward_backward, module, x_grad, grads)
                                       for name, (module, grads) in modules.items()},
                                      warmup, repeat, device)
    row.update(forward_backward_fields(forward_times, training_times, reference='ref'))
    element_bytes = x.element_size() * x.numel()
    # Fused forward reads x once and writes 3 planes per channel; backward reads
    # x and the 3C output gradient and writes grad_input (weights are negligible).
    row['fwd_bytes'] = 4 * element_bytes
    row['fwd_bwd_bytes'] = row['fwd_bytes'] + 5 * element_bytes
    return row


def add_bandwidth(row, peak_gbps):
    """Add the fused op's achieved bandwidth (GB/s) and, given the GPU's peak
    ``peak_gbps``, its fractions of the peak in percent."""
    row['fused_fwd_gbps'] = row['fwd_bytes'] / row['fused_fwd_ms'] / 1e6
    row['fused_fwd_bwd_gbps'] = row['fwd_bwd_bytes'] / row['fused_fwd_bwd_ms'] / 1e6
    if peak_gbps:
        row['fwd_peak_percent'] = 100 * row['fused_fwd_gbps'] / peak_gbps
        row['fwd_bwd_peak_percent'] = 100 * row['fused_fwd_bwd_gbps'] / peak_gbps


def table_columns(device, peak_gbps):
    """(header, cell template) of the table's columns."""
    columns = [('batch', '{batch}'), ('C x H x W', '{channels}x{height}x{width}'),
               ('built for', '{build_height}x{build_width}'), ('ref fwd', '{ref_fwd_ms:.2f}'),
               ('fused fwd', '{fused_fwd_ms:.2f}'), ('speed-up', '{fwd_speedup:.1f}x'),
               ('3x dw fwd', '{dw_fwd_ms:.2f}'), ('ref fwd+bwd', '{ref_fwd_bwd_ms:.2f}'),
               ('fused fwd+bwd', '{fused_fwd_bwd_ms:.2f}'),
               ('speed-up', '{fwd_bwd_speedup:.1f}x'), ('3x dw fwd+bwd', '{dw_fwd_bwd_ms:.2f}')]
    if device.type == 'cuda':
        columns += [('fused fwd GB/s', '{fused_fwd_gbps:.0f}'),
                    ('fused fwd+bwd GB/s', '{fused_fwd_bwd_gbps:.0f}')]
        if peak_gbps:
            columns += [('fwd % peak', '{fwd_peak_percent:.0f}%'),
                        ('fwd+bwd % peak', '{fwd_bwd_peak_percent:.0f}%')]
    return columns


def parse_args():
    parser = benchmark_parser(__doc__, warmup=3, repeat=10)
    parser.add_argument('--batch', type=positive_int, nargs='+', default=[1, 32],
                        help='batch sizes to time (default: 1 32)')
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--dtype', choices=sorted(DTYPES), default='float32')
    parser.add_argument('--peak-gbps', type=float, default=None,
                        help='peak memory bandwidth of the GPU in GB/s (cuda only)')
    parser.add_argument('--input-size', type=positive_int, nargs='+', default=[BUILD_INPUT_SIZE],
                        help='image sizes whose feature sizes the units (built for 224) run on '
                        f'(default: {BUILD_INPUT_SIZE}, the build size)')
    return parser.parse_args()


def main():
    args = parse_args()
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda was requested but no GPU is available')
    malloc = apply_settings(args.threads, args.system_malloc)
    if not EXT_AVAILABLE:
        print('warning: mmdice._ext is not built; "fused" times the reference fallback')
    dtype = DTYPES[args.dtype]
    for line in machine_lines(malloc, device):
        print(line)
    print(f'device {device.type}, dtype {args.dtype}, median of {args.repeat} runs after '
          f'{args.warmup} warm-up runs, times in ms')
    rows = [time_shape(batch, shape, dtype, device, args.warmup, args.repeat, input_size)
            for batch in args.batch for input_size in args.input_size for shape in SHAPES]
    if device.type == 'cuda':
        for row in rows:
            add_bandwidth(row, args.peak_gbps)
    print(f'checked: the fused output and gradients match the reference within '
          f'{TOLERANCES[dtype]:g} on all {len(rows)} cases')
    print(format_table(rows, table_columns(device, args.peak_gbps), args.markdown))
    write_json(rows, args.json)


if __name__ == '__main__':
    main()
