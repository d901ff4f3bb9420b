"""Convert an EdgeNets (sacmehta/EdgeNets) DiCENet checkpoint to mmdice.

Example::

    python tools/model_converters/edgenets2mmdice.py \
        ../shared/edgenets_weights/dicenet_s_1.0_pascal_384x384.pth \
        checkpoints/dicenet-s1.0_voc12aug-384x384.pth

Segmentation files become ``backbone.*`` / ``decode_head.*`` (mmseg
EncoderDecoder), ImageNet files ``backbone.*`` / ``head.*`` (mmpretrain
ImageClassifier). The inferred width scale s, build size and number of classes
are printed and recorded in the checkpoint's ``meta`` (with ``deploy=False``),
which the loading tools name when a config builds another width; unknown or
missing keys abort with the list of keys.
"""
import argparse
import sys

from mmdice.apis import convert_edgenets_checkpoint
from mmdice.utils import OutputFileError, report_error


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Convert an EdgeNets DiCENet checkpoint '
                                     'into an mmdice (OpenMMLab) checkpoint')
    parser.add_argument('src', help='EdgeNets .pth file (segmentation or ImageNet)')
    parser.add_argument('dst', help='output mmdice checkpoint path')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        result = convert_edgenets_checkpoint(args.src, args.dst)
    except OutputFileError as error:
        return report_error(error)
    except ValueError as error:
        return report_error(f'cannot convert {args.src}: {error}')
    print(f'task: {result.task}')
    print(f'widen_factor (s): {result.widen_factor}')
    print(f'input_size (build size of the DiCE units): {result.input_size}')
    print(f'num_classes: {result.num_classes}')
    print(f'saved {len(result.state_dict)} tensors to {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
