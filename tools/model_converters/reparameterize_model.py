"""Convert a trained checkpoint of a model with mmdice modules into its deploy form.

The mmdice modules of the model (DiCENet, the mmdice heads and neck) get their
deploy form (:func:`mmdice.apis.reparameterize_checkpoint`, the conversion of
``mmdice.models.switch_to_deploy``; other modules stay as trained); load the
result with the same config and ``deploy=True`` for each converted module, as
the tool prints, e.g.::

    python tools/model_converters/reparameterize_model.py \\
        configs/dicenet/dicenet-s1.0_8xb64_in1k.py epoch_150.pth dicenet-s1.0_deploy.pth
    python tools/test.py configs/dicenet/dicenet-s1.0_8xb64_in1k.py dicenet-s1.0_deploy.pth \\
        --cfg-options model.backbone.deploy=True
"""
import argparse
import sys

from mmdice.apis import deploy_cfg_options, reparameterize_checkpoint
from mmdice.utils import TOOL_ERRORS, allow_mmengine_checkpoint_globals, report_error


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Save the deploy form of a checkpoint')
    parser.add_argument('config', help='config of the trained model')
    parser.add_argument('checkpoint', help='trained checkpoint')
    parser.add_argument('out', help='output path of the deploy checkpoint')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    allow_mmengine_checkpoint_globals()
    try:
        model = reparameterize_checkpoint(args.config, args.checkpoint, args.out)
    except TOOL_ERRORS as error:
        return report_error(error)
    print(f'saved the deploy checkpoint to {args.out}; load it with '
          f'--cfg-options {" ".join(deploy_cfg_options(model))}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
