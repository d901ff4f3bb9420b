"""Export an mmdice model (classifier, segmentor, detector) to OpenVINO IR with
the mmdice ops as OpenVINO extension nodes, and check it against PyTorch.

The deploy form of the model's ``mode='tensor'`` forward (as
``pytorch2onnx.py --deploy``) is exported with every DiCE unit's fused op as
one ``DiCEFuse`` node of the mmdice OpenVINO extension (``mmdice.ops.openvino``,
built on first use with the C++ compiler against the installed openvino
wheel), the graph rewritten channels-last for the CPU plugin with each
ShuffleNet block's end as one ``ShuffleGatedConcat`` node (``--dice-layout
NCHW``: planar DiCEFuse nodes only; ``mmdice.apis.openvino_graph``). OpenVINO then runs the IR on random inputs, at the export's batch size
and one more, in float32 (relative error at most 1e-4 against PyTorch) and, for
``--precision bf16``, also in bfloat16 (its error is reported). Example::

    python tools/deployment/pytorch2openvino.py configs/dicenet/dicenet-s2.4_8xb64_in1k.py \\
        epoch_150.pth --output-file dicenet-s2.4.xml --shape 1 3 224 224 --precision bf16

Running the IR needs the extension loaded into the ``openvino.Core`` first::

    core = openvino.Core()
    mmdice.ops.openvino.load_openvino_extension(core)
    compiled = core.compile_model('dicenet-s2.4.xml', 'CPU', {'INFERENCE_PRECISION_HINT': 'bf16'})

The batch axis is dynamic (compile for a static shape where the batch is known,
``mmdice.apis.compile_openvino(..., input_shape=...)``: the CPU plugin then
removes the graph's layout conversions); height and width are those of ``--shape`` (DimConv
convolves each row and column with its own kernel). As with ``pytorch2onnx.py``
the end-to-end graph is exported by default (detectors: ``dets`` and
``labels``, whose ONNX ``NonMaxSuppression`` OpenVINO's ONNX frontend reads as
its own NMS; segmentors: ``seg_map``), ``--raw`` the heads' raw outputs, with
the same output names. ``mmdice.apis.DeployedModel(..., backend='openvino')``
and ``tools/deployment/test_deployed.py --backend openvino`` run the IR. Models without DiCE units are refused: export them with
``pytorch2onnx.py``, whose standard-operator ONNX also runs in OpenVINO.
"""
import argparse
import sys

from mmdice.apis import PRECISIONS, BackendError, count_dice_fuse, export_openvino
from mmdice.apis.export_tools import (add_form_args, add_model_args, check_export, load_model,
                                      prepare_export)
from mmdice.apis.openvino_export import DICE_LAYOUTS
from mmdice.utils.tool_inputs import InputFileError, check_output_file, report_error

#: Largest relative error of the float32 OpenVINO outputs accepted by the check.
TOLERANCE = 1e-4


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export the deploy form of an mmdice model to OpenVINO IR (.xml + .bin) '
        'with the mmdice OpenVINO extension and check it against PyTorch.')
    add_model_args(parser, 'output .xml path',
                   'example input shape; H and W are fixed in the export')
    add_form_args(parser)
    parser.add_argument('--precision', default='f32',
                        help=f'inference precision recorded in the IR, one of {PRECISIONS}')
    parser.add_argument('--dice-layout', default='NHWC', choices=DICE_LAYOUTS,
                        help='NHWC: the graph rewritten channels-last for the CPU plugin; '
                        'NCHW: planar DiCEFuse nodes, standard block ends')
    parser.add_argument('--no-check', dest='check', action='store_false',
                        help='skip the comparison with PyTorch')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.precision not in PRECISIONS:
        return report_error(f'--precision must be one of {PRECISIONS}, got {args.precision!r}')
    if not args.output_file.endswith('.xml'):
        return report_error(f'--output-file must end in .xml, got {args.output_file!r}')
    try:
        import openvino  # noqa: F401
    except ImportError as error:
        return report_error(f'the export needs the openvino package (pip install openvino): '
                            f'{error}')
    from mmdice.ops.openvino import OpenVINOExtensionError, build_openvino_extension
    try:
        check_output_file(args.output_file, 'OpenVINO IR file')
        library = build_openvino_extension()
        model = load_model(args, deploy=True)
        if not count_dice_fuse(model):
            raise ValueError(
                f'{args.config}: the model has no DiCE units (DimConvFuse2d in its deploy form) '
                'for the mmdice OpenVINO extension; export it with '
                'tools/deployment/pytorch2onnx.py')
        module, names, example = prepare_export(args, model)
    except OpenVINOExtensionError as error:
        return report_error(str(error).splitlines()[0])
    except (InputFileError, ValueError) as error:
        return report_error(error)
    written = export_openvino(module, example, args.output_file, args.precision, names, library,
                              dice_layout=args.dice_layout)
    print('saved ' + ' and '.join(written))
    if args.check:
        precisions = ['f32'] + (['bf16'] if args.precision == 'bf16' else [])
        for precision in precisions:
            try:
                problem = check_export(
                    args.output_file, module, example, args.raw,
                    'openvino', library, precision,
                    TOLERANCE if precision == 'f32' else float('inf'))
            except BackendError as error:
                return report_error(error)
            if problem is not None and precision == 'f32':
                return report_error(f'float32: {problem}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
