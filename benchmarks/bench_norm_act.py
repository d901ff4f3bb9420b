"""Benchmark the fused BatchNorm + PReLU op against ATen's BatchNorm2d then PReLU.

Training mode (batch statistics), float32: ``fwd`` is the forward alone
(no grad), ``fwd+bwd`` the forward plus the gradients of the input, the
BatchNorm affine parameters and the PReLU slopes. Shapes are the conv outputs
DiCENet s=1.0 normalises at 224x224 (the stem, a block's 1x1 conv, the 3C
DimConv outputs of the three stages). Medians in ms of interleaved runs.

Example::

    python benchmarks/bench_norm_act.py --batch 32 --markdown
    python benchmarks/bench_norm_act.py --batch 32 --json norm_act.json  # rows as JSON too
"""
import torch
from torch import nn

from benchmark_utils import (apply_settings, benchmark_parser, format_table,
                             forward_backward_fields, machine_lines, positive_int,
                             time_interleaved, write_json)
from mmdice.ops import batch_norm_prelu

# (C, H, W) of DiCENet s=1.0's normalised tensors at 224x224.
SHAPES = ((24, 112, 112), (116, 28, 28), (348, 28, 28), (696, 14, 14), (1392, 7, 7))
COLUMNS = [('batch', '{batch}'), ('C x H x W', '{channels}x{height}x{width}'),
           ('stock fwd', '{stock_fwd_ms:.2f}'), ('fused fwd', '{fused_fwd_ms:.2f}'),
           ('speed-up', '{fwd_speedup:.1f}x'), ('stock fwd+bwd', '{stock_fwd_bwd_ms:.2f}'),
           ('fused fwd+bwd', '{fused_fwd_bwd_ms:.2f}'), ('speed-up', '{fwd_bwd_speedup:.1f}x')]


def fused(norm, act):
    def run(x):
        return batch_norm_prelu(x, norm.running_mean, norm.running_var, norm.weight, norm.bias,
                                act.weight, True, norm.momentum, norm.eps)
    return run


def stock(norm, act):
    return lambda x: act(norm(x))


def time_shape(batch, shape, warmup, repeat):
    """The row of one (batch, (C, H, W)): median ms of both paths, forward alone and
    forward+backward, and the fused path's speed-ups; raises AssertionError unless
    the fused output and gradients match the stock ones."""
    channels = shape[0]
    norm, act = nn.BatchNorm2d(channels).train(), nn.PReLU(channels)
    x = torch.randn(batch, *shape)
    grad = torch.randn_like(x)
    params = [norm.weight, norm.bias, act.weight]
    xg = x.clone().requires_grad_()
    paths = dict(fused=fused(norm, act), stock=stock(norm, act))
    with torch.no_grad():
        forward = time_interleaved({name: (lambda f=f: f(x)) for name, f in paths.items()},
                                   warmup, repeat)
    both = time_interleaved(
        {name: (lambda f=f: torch.autograd.grad(f(xg), [xg, *params], grad))
         for name, f in paths.items()}, warmup, repeat)
    (out_f, *grads_f), (out_s, *grads_s) = [
        (paths[name](xg), *torch.autograd.grad(paths[name](xg), [xg, *params], grad))
        for name in ('fused', 'stock')]
    for actual, expected in zip([out_f, *grads_f], [out_s, *grads_s]):
        torch.testing.assert_close(actual, expected, rtol=1e-3, atol=1e-3)
    _, height, width = shape
    return dict(batch=batch, channels=channels, height=height, width=width,
                **forward_backward_fields(forward, both, reference='stock'))


def parse_args():
    parser = benchmark_parser(__doc__, warmup=3, repeat=10)
    parser.add_argument('--batch', nargs='+', type=positive_int, default=[32])
    return parser.parse_args()


def main():
    args = parse_args()
    malloc = apply_settings(args.threads, args.system_malloc)
    torch.manual_seed(0)
    for line in machine_lines(malloc):
        print(line)
    rows = [time_shape(batch, shape, args.warmup, args.repeat)
            for batch in args.batch for shape in SHAPES]
    print(format_table(rows, COLUMNS, args.markdown))
    write_json(rows, args.json)


if __name__ == '__main__':
    main()
