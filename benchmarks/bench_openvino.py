"""OpenVINO CPU inference speed of DiCENet's deploy form, with and without the
mmdice extension, against ShuffleNetV2 x1.5.

Three float32 models at 224x224, random weights: DiCENet s=2.4's deploy form as
the standard-operator ONNX export (``pytorch2onnx.py``), as the OpenVINO IR
with the extension's ``DiCEFuse`` nodes (``pytorch2openvino.py``), and
torchvision's ShuffleNetV2 x1.5 (ONNX, dynamo exporter). Each timing runs in
its own process (compile, warm-up, then ``--iterations`` timed calls, their
median), the models taking turns over ``--repeat`` rounds; the table gives the
median over the rounds and the spread. Example::

    python benchmarks/bench_openvino.py --batch 1 32 --threads 2 --repeat 3
"""
import argparse
import json
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(REPO, 'configs', 'dicenet', 'dicenet-s2.4_8xb64_in1k.py')


def export_models(folder):
    """{name: model path} of the three models, exported into ``folder``."""
    import torch
    import torchvision

    from mmdice.apis import (TensorModeWrapper, build_model_from_config, export_onnx,
                             export_openvino)
    example = torch.randn(1, 3, 224, 224)
    dicenet = TensorModeWrapper(build_model_from_config(CONFIG, deploy=True)).eval()
    paths = {
        'dicenet-s2.4-deploy (standard ops)': osp.join(folder, 'dicenet.onnx'),
        'dicenet-s2.4-deploy (DiCEFuse)': osp.join(folder, 'dicenet.xml'),
        'shufflenet_v2_x1_5': osp.join(folder, 'shufflenet.onnx'),
    }
    standard, fused, shufflenet = paths.values()
    export_onnx(dicenet, example, standard, output_names=['logits'])
    export_openvino(dicenet, example, fused, output_names=['logits'])
    export_onnx(torchvision.models.shufflenet_v2_x1_5().eval(), example, shufflenet,
                output_names=['logits'], dynamic_spatial=False)
    return paths


def time_model(path, batch, threads, iterations):
    """Median seconds of one call of the model at ``path`` on a (batch, 3, 224, 224) input."""
    import numpy as np

    from mmdice.apis import compile_openvino
    if path.endswith('.xml'):
        compiled = compile_openvino(path, 'f32', threads)
    else:
        import openvino as ov
        config = {'INFERENCE_PRECISION_HINT': 'f32', 'INFERENCE_NUM_THREADS': threads}
        compiled = ov.Core().compile_model(path, 'CPU', config)
    x = np.random.randn(batch, 3, 224, 224).astype(np.float32)
    request = compiled.create_infer_request()
    for _ in range(3):
        request.infer({0: x})
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        request.infer({0: x})
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int, nargs='+', default=[1, 32])
    parser.add_argument('--threads', type=int, default=2, help='INFERENCE_NUM_THREADS')
    parser.add_argument('--repeat', type=int, default=3, help='rounds of the interleaving')
    parser.add_argument('--iterations', type=int, default=10, help='timed calls per process')
    parser.add_argument('--time', nargs=3, metavar=('PATH', 'BATCH', 'THREADS'),
                        help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args(argv)
    if args.time:
        path, batch, threads = args.time
        print(json.dumps(time_model(path, int(batch), int(threads), args.iterations)))
        return 0
    with tempfile.TemporaryDirectory() as folder:
        paths = export_models(folder)
        results = {(name, batch): [] for name in paths for batch in args.batch}
        for _ in range(args.repeat):
            for batch in args.batch:
                for name, path in paths.items():
                    output = subprocess.run(
                        [sys.executable, __file__, '--time', path, str(batch), str(args.threads),
                         '--iterations', str(args.iterations)],
                        check=True, capture_output=True, text=True).stdout
                    results[name, batch].append(float(output.strip().splitlines()[-1]))
    print(f'OpenVINO f32, {args.threads} threads, 224x224, median of {args.repeat} rounds '
          f'(each the median of {args.iterations} calls)')
    print('| model | batch | ms (median) | spread (ms) |')
    print('|---|---|---|---|')
    for (name, batch), times in results.items():
        print(f'| {name} | {batch} | {1e3 * statistics.median(times):.1f} | '
              f'{1e3 * min(times):.1f} - {1e3 * max(times):.1f} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
