"""Which layers of an mmdice model lose its answers in int8, and why.

Quantizes the model's deploy form as tools/deployment/quantize.py does (ONNX ->
OpenVINO -> NNCF, calibrated on ``--calib-dir``) and compares the int8 model
with the fp32 OpenVINO model on the images of ``--eval-dir`` (default: the
calibration images; give a disjoint folder to measure what deployment sees):

* the argmax agreement (over axis 1 of the first output: classes) of int8 with fp32;
* the quantized layers with the lowest SQNR of their int8 output against fp32;
* the quantizers (NNCF ``FakeQuantize``) with the lowest SQNR of their own
  rounding and clipping, with the per-channel ranges of the activation they
  quantize against the one per-tensor range int8 gives it (``median ch`` /
  ``min ch``: channel max-abs as a fraction of that range; ``narrow``: the
  fraction of channels using less than 1/16 of it, i.e. 4 bits or fewer);
* those ``--top`` quantizers ranked by the agreement when only each is active
  (``alone``) and when all but it are (``without``).

Example::

    python tools/analysis_tools/int8_sensitivity.py \\
        configs/dicenet_seg/dicenet-s0.5_1xb40-100e_voc12aug-256x256.py seg.pth \\
        --calib-dir photos/calib --eval-dir photos/eval --top 12 --json sens.json

The quantization options (``--keep-float``, ``--ignore-types``, ``--preset``,
``--range-estimator``, ``--bias-correction``, ``--overflow-fix``, ``--equalize``,
``--fold-constant``, ``--no-fuse-prelu``) are tools/deployment/quantize.py's,
with its defaults. Bad input is one ``error:`` line, exit status 1.
"""
import argparse
import json
import os.path as osp
import shutil
import sys
import tempfile

from mmdice.apis.export_tools import read_config_and_checkpoint
from mmdice.apis.quantize import (QuantizationError, add_quantization_args, calibration_inputs,
                                  list_calibration_images, prepare_quantization, quantize_model,
                                  read_onnx, rewrite_float_model)
from mmdice.utils.tool_inputs import TOOL_ERRORS, InputFileError, check_output_file, report_error


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Per-layer int8 sensitivity (OpenVINO + NNCF) of an mmdice model: SQNR of '
        'the int8 layers and quantizers against fp32, activation ranges per channel against '
        'the per-tensor range, and the quantizers ranked by the argmax agreement they cost.')
    parser.add_argument('config', help='model config')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint (random weights without)')
    parser.add_argument('--calib-dir', required=True, help='folder of calibration images')
    parser.add_argument('--calib-num', type=int, default=300,
                        help='use at most this many calibration images (default: 300)')
    parser.add_argument('--eval-dir', help='folder of evaluation images (default: --calib-dir)')
    parser.add_argument('--eval-num', type=int, default=8,
                        help='use at most this many evaluation images (default: 8)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input height and width (default: the first calibration image '
                        'after the test pipeline)')
    parser.add_argument('--top', type=int, default=10,
                        help='rank this many lowest-SQNR quantizers by agreement (default: 10)')
    parser.add_argument('--rows', type=int, default=15,
                        help='rows of the lowest-SQNR layer and quantizer tables (default: 15)')
    parser.add_argument('--json', help='write the whole analysis to this JSON file')
    add_quantization_args(parser, accuracy_control=False)
    return parser.parse_args(argv)


def fmt(value: float, digits: int = 1) -> str:
    return f'{value:.{digits}f}' if value == value else '-'


def print_tables(analysis: dict, rows: int) -> None:
    print(f"\nint8 vs fp32 argmax agreement: {analysis['agreement']:.4f} "
          f"({len(analysis['quantizers'])} quantizers)")
    layers = sorted(analysis['layers'], key=lambda row: row['sqnr_db'])[:rows]
    print(f'\nlowest-SQNR quantized layers (int8 output vs fp32, accumulated error):\n'
          f'| layer | type | SQNR dB |\n|---|---|---|')
    for row in layers:
        print(f"| {row['name']} | {row['type']} | {fmt(row['sqnr_db'])} |")
    quantizers = sorted(analysis['quantizers'],
                        key=lambda q: q['stats'].get('sqnr_db', float('inf')))
    print('\nlowest-SQNR quantizers (own rounding and clipping on the fp32 tensor):\n'
          '| quantizer | quantizes | feeds | SQNR dB | range | max abs | clipped | median ch '
          '| min ch | narrow | alone | without |\n' + '|---' * 12 + '|')
    for q in quantizers[:rows]:
        stats = q['stats']
        feeds = ', '.join(q['consumers'][:2]) + (' ...' if len(q['consumers']) > 2 else '')
        source = 'weights' if q['weight'] else f"{q['source_type']} {q['source']}"
        print(f"| {q['name']} | {source} | {feeds} | {fmt(stats.get('sqnr_db', float('nan')))} | "
              f"{fmt(stats.get('range', float('nan')), 3)} | "
              f"{fmt(stats.get('max_abs', float('nan')), 3)} | "
              f"{fmt(stats.get('clipped', float('nan')), 4)} | "
              f"{fmt(stats.get('channel_median', float('nan')), 3)} | "
              f"{fmt(stats.get('channel_min', float('nan')), 3)} | "
              f"{fmt(stats.get('narrow_channels', float('nan')), 2)} | "
              f"{fmt(stats.get('agreement_alone', float('nan')), 4)} | "
              f"{fmt(stats.get('agreement_without', float('nan')), 4)} |")
    ranked = sorted((q for q in analysis['quantizers'] if 'agreement_alone' in q['stats']),
                    key=lambda q: q['stats']['agreement_alone'])
    print('\nranked by agreement when only it quantizes (lowest first):')
    for q in ranked:
        print(f"  {q['stats']['agreement_alone']:.4f} alone, "
              f"{q['stats']['agreement_without']:.4f} without: {q['name']} -> "
              f"{', '.join(q['consumers'])}")


def main(argv=None) -> int:
    args = parse_args(argv)
    import openvino as ov

    from mmdice.apis.int8_sensitivity import analyse_int8
    try:
        if args.top < 0 or args.rows < 1:
            raise InputFileError(f'--top must be >= 0 and --rows >= 1, got {args.top} and '
                                 f'{args.rows}')
        if args.json:
            check_output_file(args.json, 'JSON file')
        cfg = read_config_and_checkpoint(args.config, args.checkpoint)
        images = list_calibration_images(args.calib_dir, args.calib_num)
        eval_images = list_calibration_images(args.eval_dir or args.calib_dir, args.eval_num)
        staging = tempfile.mkdtemp(prefix='mmdice-int8-sensitivity-')
        try:
            onnx_path = osp.join(staging, 'model.onnx')
            module, inputs = prepare_quantization(
                cfg, args.checkpoint, images, onnx_path,
                tuple(args.shape) if args.shape else None, raw=True)
            evaluation = calibration_inputs(cfg, module.model, eval_images,
                                            size=tuple(inputs[0].shape[-2:]), progress=False)
            fp32 = read_onnx(onnx_path)  # the float model the int8 one is made from
            rewrite_float_model(fp32, [x.numpy() for x in inputs], prelu=args.fuse_prelu,
                                fold_constant=args.fold_constant, equalize=args.equalize)
            print(f'quantizing with {len(inputs)} calibration images of {args.calib_dir}')
            int8, _ = quantize_model(  # fp32 is rewritten already
                fp32.clone(), inputs, keep_float=args.keep_float, preset=args.preset,
                bias_correction=args.bias_correction, range_estimator=args.range_estimator,
                ignored_types=args.ignore_types, overflow_fix=args.overflow_fix,
                prelu=False, fold_constant=False, equalize='none', source=args.config)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except (QuantizationError, *TOOL_ERRORS) as error:
        return report_error(error)
    print(f'analysing on {len(evaluation)} images of {args.eval_dir or args.calib_dir}')
    analysis = analyse_int8(fp32, int8, [x.numpy() for x in evaluation], top=args.top,
                            core=ov.Core())
    print_tables(analysis, args.rows)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(config=args.config, checkpoint=args.checkpoint, **analysis), f,
                      indent=1, default=float)
        print(f'saved {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
