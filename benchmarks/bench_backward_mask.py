"""Time mmdice::dim_conv_backward for each output_mask autograd passes.

Frozen DimConv weights (mask: input only) skip the input-window copies and the
weight-gradient partials; an input that needs no gradient (weights only) skips
the grad_input gather. Shapes are DiCENet s=1.0's three stages at 224x224.
Times are medians over ``--repeat`` interleaved runs after ``--warmup`` runs,
in milliseconds.

Example::

    python benchmarks/bench_backward_mask.py --batch 32 --threads 1 --repeat 7 --markdown
    python benchmarks/bench_backward_mask.py --batch 32 --json backward_mask.json
"""
from functools import partial

import torch

import mmdice.ops  # noqa: F401  registers torch.ops.mmdice.*
from benchmark_utils import (apply_settings, benchmark_parser, format_table, machine_lines,
                             positive_int, time_interleaved, write_json)

SHAPES = ((116, 28, 28), (232, 14, 14), (464, 7, 7))
# output_mask (grad_input, grad_weight_depth, grad_weight_height, grad_weight_width) by name.
MASKS = {'all': [True] * 4, 'input only': [True, False, False, False],
         'weights only': [False, True, True, True]}
# The row field of each mask's median ms.
MASK_FIELDS = {name: name.replace(' ', '_') + '_ms' for name in MASKS}
COLUMNS = [('C x H x W', '{channels}x{height}x{width}')] + [
    (name, f'{{{field}:.1f}}') for name, field in MASK_FIELDS.items()]


def time_shape(batch, shape, warmup, repeat):
    """The row of one (batch, (C, H, W)): the median ms of the backward for each mask."""
    channels, height, width = shape
    x = torch.randn(batch, channels, height, width)
    weights = [torch.randn(rows, 1, 3, 3) for rows in shape]
    grad_output = torch.randn(batch, 3 * channels, height, width)
    cases = {}
    for name, mask in MASKS.items():
        # without weight gradients autograd passes an expanded scalar for the input
        source = x if any(mask[1:]) else torch.zeros(()).expand(x.shape)
        cases[name] = partial(torch.ops.mmdice.dim_conv_backward, grad_output, source, *weights,
                              [1, 1, 1], mask)
    times = time_interleaved(cases, warmup, repeat)
    row = dict(batch=batch, channels=channels, height=height, width=width)
    row.update({field: times[name].median_ms for name, field in MASK_FIELDS.items()})
    return row


def main():
    parser = benchmark_parser(__doc__, warmup=1, repeat=7)
    parser.add_argument('--batch', type=positive_int, default=32)
    args = parser.parse_args()
    malloc = apply_settings(args.threads, args.system_malloc)
    for line in machine_lines(malloc):
        print(line)
    print(f'batch {args.batch}, median of {args.repeat} runs after {args.warmup} warm-up runs, '
          'ms')
    rows = [time_shape(args.batch, shape, args.warmup, args.repeat) for shape in SHAPES]
    print(format_table(rows, COLUMNS, args.markdown))
    write_json(rows, args.json)


if __name__ == '__main__':
    main()
