"""int8 accuracy of the authors' converted PASCAL VOC DiCENet segmentors on real photos.

For each EdgeNets checkpoint (``dicenet_s_<s>_pascal_<size>.pth``): convert it
(mmdice.apis.convert_edgenets_checkpoint), quantize its deploy form exactly as
tools/deployment/quantize.py does (OpenVINO + NNCF, calibrated on the
calibration photos of mmdice.testing.photos through the config's test
pipeline), and compare the int8 model (OpenVINO, float leftovers in f32) with
the fp32 PyTorch model on the evaluation photos (disjoint from the calibration
ones), the logits bilinearly resized to the input size as the prediction does:

* argmax agreement: fraction of pixels whose int8 class equals the fp32 class;
* mean |logit difference| (over pixels and the 21 classes);
* object pixels kept: of the pixels whose fp32 class is not background, the
  fraction whose class int8 keeps.

Example::

    python tools/analysis_tools/quantize_voc_photos.py --out-dir work_dirs/voc_int8
"""
import argparse
import json
import os
import os.path as osp
import time

import numpy as np
import torch
import torch.nn.functional as F

from mmdice.apis.int8_qat import add_qat_args
from mmdice.apis.quantize import (DEFAULT_IGNORED_TYPES, DEFAULT_KEEP_FLOAT, DEFAULT_OVERFLOW_FIX,
                                  DEFAULT_PRESET, add_quantization_args)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

WEIGHTS = osp.join(REPO, '..', 'shared', 'edgenets_weights')
SCALES = ('0.5', '1.0', '1.75')
SIZES = (256, 384)


def config_of(scale: str, size: int) -> str:
    batch = 40 if size == 256 else 32
    return osp.join(REPO, 'configs', 'dicenet_seg',
                    f'dicenet-s{scale}_1xb{batch}-100e_voc12aug-{size}x{size}.py')


def quantize_checkpoint(scale, size, calib_paths, eval_paths, out_dir,
                        keep_float=DEFAULT_KEEP_FLOAT,
                        preset=DEFAULT_PRESET, weights=WEIGHTS, progress=False,
                        ignored_types=DEFAULT_IGNORED_TYPES, qat=None, **options):
    """Convert, quantize and evaluate one checkpoint; a dict of its metrics.
    ``options``: further :func:`mmdice.apis.quantize.quantize_model` options
    (``accuracy_control``: the max drop; its validation set is the calibration set);
    ``qat``: None (post-training quantization) or the keyword arguments of
    :func:`mmdice.apis.int8_qat.quantize_aware_training` (steps, learning_rate,
    batch_size; ``options`` then only give the range estimator)."""
    from mmdice.apis import (TensorModeWrapper, build_model_from_config,
                             convert_edgenets_checkpoint, export_onnx)
    from mmdice.apis.int8_qat import quantize_aware_training
    from mmdice.apis.quantize import (calibration_inputs, compile_int8, quantize_onnx,
                                      run_openvino, save_ir)
    from mmdice.utils import load_config
    source = osp.join(weights, f'dicenet_s_{scale}_pascal_{size}x{size}.pth')
    name = f'dicenet-s{scale}_voc-{size}x{size}'
    os.makedirs(out_dir, exist_ok=True)
    checkpoint = osp.join(out_dir, f'{name}.pth')
    if not osp.exists(checkpoint):
        convert_edgenets_checkpoint(source, checkpoint)
    cfg = load_config(config_of(scale, size))
    model = build_model_from_config(cfg, checkpoint, deploy=True)
    module = TensorModeWrapper(model).eval()
    calib = calibration_inputs(cfg, model, calib_paths, size=(size, size), progress=progress)
    onnx_path = osp.join(out_dir, f'{name}.onnx')
    if not osp.exists(onnx_path):
        export_onnx(module, calib[0], onnx_path)
    settings = ','.join(f'{key}={value}' for key, value in sorted(options.items()))
    if qat is not None:
        settings = ','.join(f'qat_{key}={value}' for key, value in sorted(qat.items())) + \
            f",range_estimator={options.get('range_estimator', 'minmax')}" + \
            (f",overflow_fix={options['overflow_fix']}" if 'overflow_fix' in options else '')
    tag = '-'.join(['int8', preset] + sorted(keep_float) + sorted(ignored_types)
                   + [f'{key}-{value}' for key, value in sorted(options.items())]
                   + [f'qat-{key}-{value}' for key, value in sorted((qat or {}).items())])
    xml = osp.join(out_dir, f'{name}-{tag}.xml')
    if options.get('accuracy_control') is not None:
        options['accuracy_control'] = (calib, options['accuracy_control'])
    started = time.perf_counter()
    if qat is not None:
        quantized = quantize_aware_training(
            module, calib, preset=preset,
            range_estimator=options.get('range_estimator', 'minmax'),
            overflow_fix=options.get('overflow_fix', DEFAULT_OVERFLOW_FIX), source=name, **qat)
        result = dict(written=save_ir(quantized, xml), kept_float=[])
    else:
        result = quantize_onnx(onnx_path, calib, xml, keep_float=keep_float, preset=preset,
                               progress=progress, ignored_types=ignored_types, **options)
    seconds = time.perf_counter() - started
    compiled = compile_int8(xml, precision='f32')
    evaluation = calibration_inputs(cfg, model, eval_paths, size=(size, size), progress=False)
    agree, diffs, kept = [], [], []
    for x in evaluation:
        with torch.no_grad():
            want = module(x)
        got = torch.from_numpy(run_openvino(compiled, x.numpy())[0])
        want = F.interpolate(want, size=(size, size), mode='bilinear', align_corners=False)
        got = F.interpolate(got, size=(size, size), mode='bilinear', align_corners=False)
        fp32_class, int8_class = want.argmax(1), got.argmax(1)
        agree.append((fp32_class == int8_class).float().mean().item())
        diffs.append((want - got).abs().mean().item())
        objects = fp32_class != 0
        if objects.any():
            kept.append((int8_class[objects] == fp32_class[objects]).float().mean().item())
    return dict(checkpoint=osp.basename(source), scale=scale, size=size, preset=preset,
                options=settings or '-',
                keep_float=','.join(list(keep_float) + list(ignored_types)) or '-',
                kept_float_ops=len(result['kept_float']),
                argmax_agreement=float(np.mean(agree)), min_photo_agreement=float(np.min(agree)),
                mean_abs_logit_diff=float(np.mean(diffs)),
                object_pixels_kept=float(np.mean(kept)) if kept else float('nan'),
                quantize_s=seconds)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out-dir', default=osp.join(REPO, 'work_dirs', 'voc_int8'))
    parser.add_argument('--weights', default=WEIGHTS)
    parser.add_argument('--scales', nargs='+', default=list(SCALES))
    parser.add_argument('--sizes', type=int, nargs='+', default=list(SIZES))
    add_quantization_args(parser)
    add_qat_args(parser)
    parser.add_argument('--calib-num', type=int, default=None)
    parser.add_argument('--json', help='also write the rows to this JSON file')
    args = parser.parse_args(argv)
    from mmdice.testing.photos import write_photos
    calib = write_photos(osp.join(args.out_dir, 'photos', 'calib'), 'calibration')
    calib = calib[:args.calib_num] if args.calib_num else calib
    evaluation = write_photos(osp.join(args.out_dir, 'photos', 'eval'), 'evaluation')
    print('calibration images:', ', '.join(osp.basename(p) for p in calib))
    print('evaluation images:', ', '.join(osp.basename(p) for p in evaluation))
    rows = []
    for size in args.sizes:
        for scale in args.scales:
            options = dict(range_estimator=args.range_estimator,
                           bias_correction=args.bias_correction, equalize=args.equalize,
                           fold_constant=args.fold_constant, prelu=args.fuse_prelu,
                           overflow_fix=args.overflow_fix)
            if args.accuracy_control is not None:
                options['accuracy_control'] = args.accuracy_control
            qat = dict(steps=args.qat_steps, learning_rate=args.qat_lr,
                       batch_size=args.qat_batch) if args.qat else None
            row = quantize_checkpoint(scale, size, calib, evaluation, args.out_dir,
                                      args.keep_float, args.preset, args.weights,
                                      ignored_types=args.ignore_types, qat=qat, **options)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print('| checkpoint | keep float | options | argmax agreement | min per photo '
          '| mean abs logit diff | object pixels kept |')
    print('|---|---|---|---|---|---|---|')
    for row in rows:
        print(f"| {row['checkpoint']} | {row['keep_float']} | {row['options']} | "
              f"{row['argmax_agreement']:.4f} | "
              f"{row['min_photo_agreement']:.4f} | {row['mean_abs_logit_diff']:.4f} | "
              f"{row['object_pixels_kept']:.4f} |")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)


if __name__ == '__main__':
    main()
