"""Generate the synthetic shapes data sets (see mmdice/testing/shapes.py).

Example::

    python tools/dataset_converters/generate_shapes.py --task all --out data/shapes

writes ``data/shapes/classification`` (class folders), ``data/shapes/detection``
(COCO json) and ``data/shapes/segmentation`` (VOC layout); a single task writes
straight into ``--out``.
"""
import argparse
import os.path as osp

from mmdice.testing.shapes import (generate_shapes_classification, generate_shapes_detection,
                                   generate_shapes_segmentation)

GENERATORS = {
    'classification': generate_shapes_classification,
    'detection': generate_shapes_detection,
    'segmentation': generate_shapes_segmentation,
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Generate the synthetic shapes data sets')
    parser.add_argument('--task', choices=[*GENERATORS, 'all'], default='all')
    parser.add_argument('--out', required=True,
                        help='output folder (with --task all: one sub-folder per task)')
    parser.add_argument('--num-images', type=int, default=None,
                        help='images per task (default: the generator default)')
    parser.add_argument('--image-size', type=int, default=None,
                        help='square image side in pixels (default: the generator default)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--val-fraction', type=float, default=0.25)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    tasks = list(GENERATORS) if args.task == 'all' else [args.task]
    kwargs = dict(seed=args.seed, val_fraction=args.val_fraction)
    if args.num_images is not None:
        kwargs['num_images'] = args.num_images
    if args.image_size is not None:
        kwargs['image_size'] = args.image_size
    for task in tasks:
        out_dir = osp.join(args.out, task) if args.task == 'all' else args.out
        counts = GENERATORS[task](out_dir, **kwargs)
        print(f'{task}: {counts["train"]} train / {counts["val"]} val images -> {out_dir}')


if __name__ == '__main__':
    main()
