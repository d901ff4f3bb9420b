"""int8 (post-training static quantization) against fp32 on the CPU: DiCENet
s=1.0 and s=2.4, ShuffleNetV2 x1.5, MobileNetV2 (224x224 classifiers) and the
DiCENet s=1.0 VOC segmentor (384x384, decode-head logits), each quantized the
same way (mmdice.apis.quantize: ONNX -> OpenVINO -> NNCF, calibrated on the
images of --calib-dir through the config's test pipeline).

Each (model, runtime, batch) is timed in its own process (runtimes in one
process disturb each other's thread pools), in rounds: every round runs every
case once, in turn, so machine load affects all alike; a case's time is the
median over rounds of its per-process median. Runtimes: ``torch-cl`` (eager,
channels-last: the fastest PyTorch fp32 form of DiCENet), ``ort-fp32``
(onnxruntime), ``ov-fp32`` (OpenVINO, INFERENCE_PRECISION_HINT f32),
``ov-int8`` (the NNCF int8 IR with the tool's defaults: only the dense
convolutions int8 but the first, symmetric activations, 7-bit weights; float
leftovers in f32), ``ov-int8-all`` (every op type int8, asymmetric
activations, NNCF's first-layer overflow fix: the defaults before), ``ov-int8-bf16``
(same as ov-int8, float leftovers in bf16), ``ort-qdq`` (onnxruntime quantize_static, QDQ,
per-channel symmetric int8 weights and symmetric int8 activations; with --ort-qdq).
Example::

    python benchmarks/bench_int8.py --calib-dir work_dirs/photos/calib --markdown
"""
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from benchmark_utils import (REPO_ROOT, benchmark_parser, config_path, cpu_model, format_table,
                             write_json)

CLS_CONFIG = config_path('dicenet/dicenet-s1.0_8xb64_in1k.py')
SEG_CONFIG = config_path('dicenet_seg/dicenet-s1.0_1xb32-100e_voc12aug-384x384.py')
#: name -> (input size, config whose test pipeline prepares the calibration images)
MODELS = {
    'dicenet-s1.0': (224, CLS_CONFIG),
    'dicenet-s2.4': (224, CLS_CONFIG),
    'shufflenet_v2_x1_5': (224, CLS_CONFIG),
    'mobilenet_v2': (224, CLS_CONFIG),
    'dicenet-s1.0-voc-seg': (384, SEG_CONFIG),
}
#: int8 IR variants: runtime -> (file suffix, quantize_onnx options).
INT8_VARIANTS = {
    'ov-int8-all': ('int8-all', dict(ignored_types=(), keep_float=(), preset='mixed',
                                     overflow_fix='first_layer_only')),
}
RUNTIMES = ('torch-cl', 'ort-fp32', 'ov-fp32', 'ov-int8', 'ov-int8-all', 'ov-int8-bf16',
            'ort-qdq')


def build_model(name: str):
    """The model ``name`` of MODELS as tensor -> tensors, random weights, deploy form."""
    from mmdice.apis import TensorModeWrapper, build_model_from_config
    from mmdice.models import switch_to_deploy
    from mmdice.utils import load_config
    if name.startswith('dicenet-s') and not name.endswith('voc-seg'):
        cfg = load_config(config_path(f'dicenet/dicenet-{name.split("-")[1]}_8xb64_in1k.py'))
    elif name.endswith('voc-seg'):
        cfg = load_config(SEG_CONFIG)
    else:
        import torchvision
        return getattr(torchvision.models, name)(weights=None).eval()
    cfg.model.backbone.pop('init_cfg', None)
    model = build_model_from_config(cfg)
    model.init_weights()
    switch_to_deploy(model)
    return TensorModeWrapper(model).eval()


def prepare(name: str, args) -> dict:
    """ONNX export, OpenVINO int8 IR (and onnxruntime QDQ model) of ``name`` under
    --out-dir, made once; returns the paths."""
    from mmdice.apis import export_onnx
    from mmdice.apis.quantize import (calibration_inputs, list_calibration_images,
                                      quantize_onnx)
    from mmdice.utils import load_config
    size, config = MODELS[name]
    paths = dict(onnx=osp.join(args.out_dir, f'{name}.onnx'),
                 int8=osp.join(args.out_dir, f'{name}-int8.xml'),
                 qdq=osp.join(args.out_dir, f'{name}-qdq.onnx'))
    variants = [runtime for runtime in args.runtimes if runtime in INT8_VARIANTS]
    for runtime in variants:
        paths[runtime] = osp.join(args.out_dir, f'{name}-{INT8_VARIANTS[runtime][0]}.xml')
    todo = (not osp.exists(paths['int8']) or (args.ort_qdq and not osp.exists(paths['qdq']))
            or any(not osp.exists(paths[runtime]) for runtime in variants))
    if not osp.exists(paths['onnx']):
        torch.manual_seed(0)
        export_onnx(build_model(name), torch.randn(1, 3, size, size), paths['onnx'])
    if todo:
        cfg = load_config(config)
        from mmdice.apis import build_model_from_config
        preprocessor_model = build_model_from_config(cfg)
        images = list_calibration_images(args.calib_dir, args.calib_num)
        inputs = calibration_inputs(cfg, preprocessor_model, images, size=(size, size))
        if not osp.exists(paths['int8']):
            started = time.perf_counter()
            quantize_onnx(paths['onnx'], inputs, paths['int8'])
            print(f'{name}: NNCF int8 in {time.perf_counter() - started:.0f} s', flush=True)
        for runtime in variants:
            if not osp.exists(paths[runtime]):
                quantize_onnx(paths['onnx'], inputs, paths[runtime], **INT8_VARIANTS[runtime][1])
        if args.ort_qdq and not osp.exists(paths['qdq']):
            started = time.perf_counter()
            quantize_qdq(paths['onnx'], inputs, paths['qdq'])
            print(f'{name}: onnxruntime QDQ int8 in {time.perf_counter() - started:.0f} s',
                  flush=True)
    return paths


def quantize_qdq(onnx_path: str, inputs, output: str) -> None:
    """onnxruntime's quantize_static: QDQ, per-channel symmetric int8 weights,
    symmetric int8 activations, min-max calibration on ``inputs``."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):

        def __init__(self):
            self.items = iter([{'input': tensor.numpy()} for tensor in inputs])

        def get_next(self):
            return next(self.items, None)

    quantize_static(onnx_path, output, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    extra_options={'ActivationSymmetric': True})


def worker(runtime: str, path: str, batch: int, size: int, args) -> float:
    """Median ms of ``args.repeat`` runs of one case, in this process."""
    torch.set_num_threads(args.threads)
    x = torch.randn(batch, 3, size, size)
    if runtime == 'torch-cl':
        model = build_model(path).to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

        def run():
            with torch.no_grad():
                model(x)
    elif runtime in ('ort-fp32', 'ort-qdq'):
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        if runtime == 'ort-qdq':
            # ORT_ENABLE_ALL's NHWC layout transformation breaks the QDQ graph at
            # batch > 1 (a Gather of the shape out of range); EXTENDED keeps QDQ fusions
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
        feed = {session.get_inputs()[0].name: x.numpy()}

        def run():
            session.run(None, feed)
    else:
        from mmdice.apis.quantize import compile_int8
        precision = 'bf16' if runtime.endswith('bf16') else 'f32'
        compiled = compile_int8(path, args.threads, precision, shape=(batch, 3, size, size))
        request = compiled.create_infer_request()
        array = x.numpy()

        def run():
            request.infer({0: array})
    for _ in range(args.warmup):
        run()
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def case_path(runtime: str, name: str, paths: dict) -> str:
    if runtime == 'torch-cl':
        return name
    if runtime in ('ort-fp32', 'ov-fp32'):
        return paths['onnx']
    if runtime == 'ort-qdq':
        return paths['qdq']
    if runtime in INT8_VARIANTS:
        return paths[runtime]
    return paths['int8']


def parse_args():
    parser = benchmark_parser(__doc__, warmup=3, repeat=10, threads=2)
    parser.add_argument('--calib-dir', help='calibration images (required unless --worker)')
    parser.add_argument('--calib-num', type=int, default=None, help='at most this many images')
    parser.add_argument('--out-dir', default=osp.join(REPO_ROOT, 'work_dirs', 'bench_int8'),
                        help='where the ONNX and int8 models are kept (reused when present)')
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS))
    parser.add_argument('--runtimes', nargs='+', default=[r for r in RUNTIMES if 'bf16' not in r],
                        choices=RUNTIMES)
    parser.add_argument('--batch', type=int, nargs='+', default=[1, 32])
    parser.add_argument('--rounds', type=int, default=3, help='processes per case')
    parser.add_argument('--ort-qdq', action='store_true',
                        help='also make the onnxruntime QDQ int8 model (runtime ort-qdq)')
    parser.add_argument('--worker', nargs=4, metavar=('RUNTIME', 'PATH', 'BATCH', 'SIZE'),
                        help=argparse_suppress())
    return parser.parse_args()


def argparse_suppress():
    import argparse
    return argparse.SUPPRESS


def main():
    args = parse_args()
    if args.worker:
        runtime, path, batch, size = args.worker
        print(json.dumps(dict(ms=worker(runtime, path, int(batch), int(size), args))))
        return
    if 'ort-qdq' in args.runtimes:
        args.ort_qdq = True
    os.makedirs(args.out_dir, exist_ok=True)
    prepared = {name: prepare(name, args) for name in args.models}
    cases = [(name, runtime, batch) for batch in args.batch for name in args.models
             for runtime in args.runtimes]
    samples = {case: [] for case in cases}
    # passive OpenMP waits: spinning threads of one process steal the cores of the others
    # (and of other jobs) on a shared machine, and inflate PyTorch's times there many-fold
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS=str(args.threads),
               OMP_WAIT_POLICY='PASSIVE')
    for round_index in range(args.rounds):
        for name, runtime, batch in cases:
            repeat = max(3, args.repeat // 3) if batch >= 16 else args.repeat
            if batch >= 16 and name.endswith('voc-seg'):
                continue
            command = [sys.executable, osp.abspath(__file__), '--worker', runtime,
                       case_path(runtime, name, prepared[name]), str(batch),
                       str(MODELS[name][0]), '--threads', str(args.threads),
                       '--warmup', str(args.warmup), '--repeat', str(repeat)]
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            if done.returncode:
                print(f'{name} {runtime} batch {batch} failed: {done.stderr[-2000:]}',
                      file=sys.stderr)
                samples[(name, runtime, batch)].append(float('nan'))
                continue
            value = json.loads(done.stdout.strip().splitlines()[-1])['ms']
            samples[(name, runtime, batch)].append(value)
            print(f'round {round_index + 1}: {name} {runtime} batch {batch}: {value:.1f} ms',
                  flush=True)
    rows = []
    for name in args.models:
        for batch in args.batch:
            if batch >= 16 and name.endswith('voc-seg'):
                continue  # the segmentor at 384x384: batch 1 only
            row = dict(model=name, batch=batch)
            for runtime in args.runtimes:
                values = [v for v in samples[(name, runtime, batch)] if not np.isnan(v)]
                row[runtime] = statistics.median(values) if values else float('nan')
            fp32 = [row[r] for r in ('torch-cl', 'ort-fp32', 'ov-fp32')
                    if r in row and not np.isnan(row[r])]
            if 'ov-int8' in row and fp32:
                row['int8_speedup'] = min(fp32) / row['ov-int8']
            rows.append(row)
    for row in rows:
        for runtime in args.runtimes:
            row[runtime.replace('-', '_')] = row.pop(runtime)
    columns = [('model', '{model}'), ('batch', '{batch}')] + [
        (r, '{' + r.replace('-', '_') + ':.1f}') for r in args.runtimes]
    if any('int8_speedup' in row for row in rows):
        columns.append(('int8 speed-up vs best fp32', '{int8_speedup:.2f}'))
    print(f'CPU: {cpu_model()}, {args.threads} threads, median ms over {args.rounds} processes')
    print(format_table(rows, columns, args.markdown))
    write_json(rows, args.json)


if __name__ == '__main__':
    main()
