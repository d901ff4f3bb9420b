"""Convert a trained DiCENet checkpoint into its deploy (inference) form.

Every DiCENet of the model gets its fused DiCE units and folded BatchNorms
(:meth:`mmdice.models.DiCENet.switch_to_deploy`); load the result with the
same config and ``model.backbone.deploy=True``, e.g.::

    python tools/model_converters/reparameterize_model.py \\
        configs/dicenet/dicenet-s1.0_8xb64_in1k.py epoch_150.pth dicenet-s1.0_deploy.pth
    python tools/test.py configs/dicenet/dicenet-s1.0_8xb64_in1k.py dicenet-s1.0_deploy.pth \\
        --cfg-options model.backbone.deploy=True
"""
import argparse
import os
import os.path as osp
import sys

from mmdice.utils.reparameterize import reparameterize_checkpoint


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Save the deploy form of a DiCENet checkpoint')
    parser.add_argument('config', help='config of the trained model')
    parser.add_argument('checkpoint', help='trained checkpoint')
    parser.add_argument('out', help='output path of the deploy checkpoint')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    for name in ('config', 'checkpoint'):
        if not osp.isfile(getattr(args, name)):
            print(f'error: {name} {getattr(args, name)!r} does not exist', file=sys.stderr)
            return 1
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    try:
        reparameterize_checkpoint(args.config, args.checkpoint, args.out)
    except ValueError as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    print(f'saved the deploy checkpoint to {args.out}; load it with '
          '--cfg-options model.backbone.deploy=True')
    return 0


if __name__ == '__main__':
    sys.exit(main())
