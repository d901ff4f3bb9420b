"""Export an mmdice model (classifier, segmentor, detector) to ONNX and check it.

The model's ``mode='tensor'`` forward (the head's raw outputs: logits of a
classifier, the decode head's logits of a segmentor, the heads' tensors of a
detector) is exported with torch's dynamo exporter; the mmdice ops become
standard ONNX operators (``mmdice.ops.onnx``). onnxruntime then runs the file
on a random input and its outputs are compared with PyTorch's. Example::

    python tools/deployment/pytorch2onnx.py configs/dicenet/dicenet-s2.4_8xb64_in1k.py \\
        epoch_150.pth --output-file dicenet-s2.4.onnx --shape 1 3 224 224 --deploy
"""
import argparse
import os
import os.path as osp
import sys

import torch

from mmdice.apis import TensorModeWrapper, build_model_from_config, check_onnx, export_onnx

#: Largest relative error of the onnxruntime outputs accepted by the check.
TOLERANCE = 1e-3


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Export an mmdice model to ONNX')
    parser.add_argument('config', help='model config')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint (random weights without)')
    parser.add_argument('--output-file', required=True, help='output .onnx path')
    parser.add_argument('--shape', type=int, nargs=4, default=[1, 3, 224, 224],
                        metavar=('N', 'C', 'H', 'W'), help='input shape')
    parser.add_argument('--deploy', action='store_true',
                        help='export the deploy form (mmdice.models.switch_to_deploy)')
    parser.add_argument('--no-check', dest='check', action='store_false',
                        help='skip the onnxruntime comparison')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if any(side < 1 for side in args.shape):
        print(f'error: --shape must be four positive ints, got {args.shape}', file=sys.stderr)
        return 1
    for name in ('config', 'checkpoint'):
        path = getattr(args, name)
        if path is not None and not osp.isfile(path):
            print(f'error: {name} {path!r} does not exist', file=sys.stderr)
            return 1
    model = build_model_from_config(args.config, args.checkpoint, deploy=args.deploy)
    module = TensorModeWrapper(model).eval()
    example = torch.randn(*args.shape)
    os.makedirs(osp.dirname(osp.abspath(args.output_file)), exist_ok=True)
    export_onnx(module, example, args.output_file)
    print(f'saved {args.output_file}')
    if args.check:
        outputs, error = check_onnx(args.output_file, module, example)
        print(f'onnxruntime vs PyTorch: {outputs} outputs, max relative error {error:.2e}')
        if error > TOLERANCE:
            print(f'error: the relative error exceeds {TOLERANCE}', file=sys.stderr)
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
