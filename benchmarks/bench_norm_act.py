"""Benchmark the fused BatchNorm + PReLU op against ATen's BatchNorm2d then PReLU.

Training mode (batch statistics), float32: ``fwd`` is the forward alone
(no grad), ``fwd+bwd`` the forward plus the gradients of the input, the
BatchNorm affine parameters and the PReLU slopes. Shapes are the conv outputs
DiCENet s=1.0 normalises at 224x224 (the stem, a block's 1x1 conv, the 3C
DimConv outputs of the three stages). Medians in ms of interleaved runs.

Example::

    python benchmarks/bench_norm_act.py --batch 32 --markdown
"""
import argparse
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench_dim_conv import (machine_info, median_ms, non_negative_int,  # noqa: E402
                            positive_int, reuse_large_allocations)
from mmdice.ops import batch_norm_prelu  # noqa: E402

# (C, H, W) of DiCENet s=1.0's normalised tensors at 224x224.
SHAPES = ((24, 112, 112), (116, 28, 28), (348, 28, 28), (696, 14, 14), (1392, 7, 7))


def fused(norm, act):
    def run(x):
        return batch_norm_prelu(x, norm.running_mean, norm.running_var, norm.weight, norm.bias,
                                act.weight, True, norm.momentum, norm.eps)
    return run


def stock(norm, act):
    return lambda x: act(norm(x))


def time_shape(batch, shape, warmup, repeat):
    channels = shape[0]
    norm, act = nn.BatchNorm2d(channels).train(), nn.PReLU(channels)
    x = torch.randn(batch, *shape)
    grad = torch.randn_like(x)
    params = [norm.weight, norm.bias, act.weight]
    xg = x.clone().requires_grad_()
    paths = dict(fused=fused(norm, act), stock=stock(norm, act))
    with torch.no_grad():
        forward = median_ms({name: (lambda f=f: f(x)) for name, f in paths.items()},
                            x.device, warmup, repeat)
    both = median_ms({name: (lambda f=f: torch.autograd.grad(f(xg), [xg, *params], grad))
                      for name, f in paths.items()}, x.device, warmup, repeat)
    (out_f, *grads_f), (out_s, *grads_s) = [
        (paths[name](xg), *torch.autograd.grad(paths[name](xg), [xg, *params], grad))
        for name in ('fused', 'stock')]
    for actual, expected in zip([out_f, *grads_f], [out_s, *grads_s]):
        torch.testing.assert_close(actual, expected, rtol=1e-3, atol=1e-3)
    return forward, both


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch', nargs='+', type=positive_int, default=[32])
    parser.add_argument('--threads', type=positive_int, default=None)
    parser.add_argument('--warmup', type=non_negative_int, default=3)
    parser.add_argument('--repeat', type=positive_int, default=10)
    parser.add_argument('--markdown', action='store_true')
    return parser.parse_args()


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    malloc = reuse_large_allocations()
    torch.manual_seed(0)
    for line in machine_info(torch.device('cpu')) + [f'malloc: {malloc}']:
        print(line)
    header = ['batch', 'C x H x W', 'stock fwd', 'fused fwd', 'speed-up', 'stock fwd+bwd',
              'fused fwd+bwd', 'speed-up']
    rows = []
    for batch in args.batch:
        for shape in SHAPES:
            forward, both = time_shape(batch, shape, args.warmup, args.repeat)
            rows.append([str(batch), 'x'.join(map(str, shape)), f'{forward["stock"]:.2f}',
                         f'{forward["fused"]:.2f}', f'{forward["stock"] / forward["fused"]:.1f}x',
                         f'{both["stock"]:.2f}', f'{both["fused"]:.2f}',
                         f'{both["stock"] / both["fused"]:.1f}x'])
    if args.markdown:
        print('| ' + ' | '.join(header) + ' |')
        print('|' + '---|' * len(header))
        for row in rows:
            print('| ' + ' | '.join(row) + ' |')
    else:
        for row in [header] + rows:
            print('  '.join(cell.rjust(13) for cell in row))


if __name__ == '__main__':
    main()
