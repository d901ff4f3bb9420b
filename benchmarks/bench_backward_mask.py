"""Time mmdice::dim_conv_backward for each output_mask autograd passes.

Frozen DimConv weights (mask: input only) skip the input-window copies and the
weight-gradient partials; an input that needs no gradient (weights only) skips
the grad_input gather. Shapes are DiCENet s=1.0's three stages at 224x224.
Times are medians over ``--repeat`` runs, in milliseconds.

Example::

    python benchmarks/bench_backward_mask.py --batch 32 --threads 1 --repeat 7
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mmdice.ops  # noqa: E402,F401  registers torch.ops.mmdice.*

SHAPES = ((116, 28, 28), (232, 14, 14), (464, 7, 7))
MASKS = {'all': [True] * 4, 'input only': [True, False, False, False],
         'weights only': [False, True, True, True]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--repeat', type=int, default=7)
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, '
          f'median of {args.repeat} runs, ms')
    print('| C x H x W | ' + ' | '.join(MASKS) + ' |')
    print('|---|' + '---|' * len(MASKS))
    for channels, height, width in SHAPES:
        x = torch.randn(args.batch, channels, height, width)
        weights = [torch.randn(rows, 1, 3, 3) for rows in (channels, height, width)]
        grad_output = torch.randn(args.batch, 3 * channels, height, width)
        cells = []
        for mask in MASKS.values():
            # without weight gradients autograd passes an expanded scalar for the input
            source = x if any(mask[1:]) else torch.zeros(()).expand(x.shape)
            times = []
            for _ in range(args.repeat + 1):
                start = time.perf_counter()
                torch.ops.mmdice.dim_conv_backward(grad_output, source, *weights, [1, 1, 1],
                                                   mask)
                times.append((time.perf_counter() - start) * 1e3)
            cells.append(f'{statistics.median(times[1:]):.1f}')
        print(f'| {channels}x{height}x{width} | ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
    main()
