"""OpenVINO CPU inference speed of DiCENet s=2.4's deploy form against ShuffleNetV2 x1.5.

Models at 224x224, random weights: DiCENet s=2.4's deploy form as the OpenVINO
IR with the extension's nodes (``pytorch2openvino.py``: the channels-last
graph with ``DiCEFuse`` and ``ShuffleGatedConcat`` nodes, the default, and
the planar one with ``DiCEFuse`` nodes only), as the standard-operator ONNX
export (``pytorch2onnx.py``), and torchvision's ShuffleNetV2 x1.5 (ONNX), each
at the requested precisions (INFERENCE_PRECISION_HINT; a CPU without bf16
runs f32), compiled for the batch's static shape (``--dynamic``: with the
dynamic batch axis of the files).
``--extra NAME XML LIBRARY`` adds an IR built elsewhere (e.g. by an earlier
version, with its extension library). Every timing runs in its own process
(compile, ``--warmup`` calls, then ``--repeat`` timed calls, their median), the
models taking turns over ``--rounds`` rounds; the table gives the median over
the rounds and each model's ratio to ShuffleNetV2 at the same precision and
batch. ``--profile`` prints OpenVINO's per-node-type profile (PERF_COUNT) of
each model at the largest batch, and the executed standalone element-wise
nodes, Reorders and Transposes of its runtime graph. Example::

    python benchmarks/bench_openvino.py --batch 1 32 --precision f32 --threads 2 --profile
"""
import argparse
import collections
import json
import os.path as osp
import statistics
import subprocess
import sys
import tempfile

from benchmark_utils import (benchmark_parser, config_path, cpu_model, format_table,
                             machine_lines, time_infer_request, write_json)

CONFIG = config_path('dicenet/dicenet-s2.4_8xb64_in1k.py')
SHUFFLENET = 'shufflenet_v2_x1_5'
#: Runtime-graph layer types counted in the profile: element-wise nodes left
#: standalone (an activation not fused into its convolution) and layout conversions.
RUNTIME_LAYERS = ('Eltwise', 'Reorder', 'Transpose')


def export_models(folder):
    """{name: model path} of the models, exported into ``folder``."""
    import torch
    import torchvision

    from mmdice.apis import (TensorModeWrapper, build_model_from_config, export_onnx,
                             export_openvino)
    example = torch.randn(1, 3, 224, 224)
    dicenet = TensorModeWrapper(build_model_from_config(CONFIG, deploy=True)).eval()
    paths = {
        SHUFFLENET: osp.join(folder, 'shufflenet.onnx'),
        'dicenet-s2.4 OpenVINO NHWC graph': osp.join(folder, 'dicenet_nhwc.xml'),
        'dicenet-s2.4 OpenVINO NCHW DiCEFuse': osp.join(folder, 'dicenet_nchw.xml'),
        'dicenet-s2.4 standard ops': osp.join(folder, 'dicenet.onnx'),
    }
    export_onnx(torchvision.models.shufflenet_v2_x1_5().eval(), example, paths[SHUFFLENET],
                output_names=['logits'], dynamic_spatial=False)
    export_openvino(dicenet, example, paths['dicenet-s2.4 OpenVINO NHWC graph'],
                    output_names=['logits'])
    export_openvino(dicenet, example, paths['dicenet-s2.4 OpenVINO NCHW DiCEFuse'],
                    output_names=['logits'], dice_layout='NCHW')
    export_onnx(dicenet, example, paths['dicenet-s2.4 standard ops'], output_names=['logits'])
    return paths


def compile_model(path, batch, static, precision, threads, library, profile=False):
    """The model at ``path`` compiled for the CPU (an IR with the extension
    ``library``), for input (batch, 3, 224, 224) if ``static``."""
    from mmdice.apis import compile_openvino
    config = {'PERF_COUNT': True} if profile else {}
    return compile_openvino(path, precision, threads, library=library or None,
                            extension=path.endswith('.xml'), config=config,
                            input_shape=(batch, 3, 224, 224) if static else None)


def time_model(path, batch, static, precision, threads, library, warmup, repeat):
    """Median ms of one call of the model at ``path`` on a (batch, 3, 224, 224) input."""
    import numpy as np
    request = compile_model(path, batch, static, precision, threads,
                            library).create_infer_request()
    x = np.random.randn(batch, 3, 224, 224).astype(np.float32)
    return time_infer_request(request, {0: x}, warmup, repeat)


def profile_model(path, batch, static, precision, threads, library, warmup):
    """({node type: ms} of one profiled call, {runtime node type: count} of the
    executed standalone activations and layout conversions)."""
    import numpy as np
    compiled = compile_model(path, batch, static, precision, threads, library, profile=True)
    request = compiled.create_infer_request()
    x = np.random.randn(batch, 3, 224, 224).astype(np.float32)
    for _ in range(warmup):
        request.infer({0: x})
    request.infer({0: x})
    by_type = collections.Counter()
    for info in request.profiling_info:
        by_type[info.node_type] += info.real_time.total_seconds() * 1e3
    runtime = collections.Counter(
        op.get_rt_info()['layerType'].astype(str) for op in compiled.get_runtime_model().get_ops()
        if op.get_rt_info()['execTimeMcs'].astype(str) != 'not_executed')
    counted = {name: runtime[name] for name in RUNTIME_LAYERS}
    return dict(by_type), counted


def run_child(*arguments):
    output = subprocess.run([sys.executable, __file__, *map(str, arguments)], check=True,
                            capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main(argv=None):
    parser = benchmark_parser(__doc__, warmup=5, repeat=10, threads=2)
    parser.add_argument('--batch', type=int, nargs='+', default=[1, 32])
    parser.add_argument('--precision', nargs='+', default=['f32'], choices=['f32', 'bf16'])
    parser.add_argument('--rounds', type=int, default=3, help='rounds of the interleaving')
    parser.add_argument('--profile', action='store_true',
                        help="print OpenVINO's per-node-type profile at the largest batch")
    parser.add_argument('--extra', nargs=3, action='append', default=[],
                        metavar=('NAME', 'XML', 'LIBRARY'),
                        help='also time this IR, run with this extension library')
    parser.add_argument('--dynamic', action='store_true',
                        help='compile with the dynamic batch axis instead of static shapes')
    parser.add_argument('--child', nargs=6, help=argparse.SUPPRESS)  # a timing process
    args = parser.parse_args(argv)
    if args.child:
        mode, path, batch, precision, library, threads = args.child
        common = (path, int(batch), not args.dynamic, precision, int(threads), library)
        if mode == 'time':
            print(json.dumps(time_model(*common, args.warmup, args.repeat)))
        else:
            print(json.dumps(profile_model(*common, args.warmup)))
        return 0
    print('\n'.join(machine_lines('system default', packages=('openvino', 'onnxruntime'))))
    rows, profiles = [], {}
    shape_flag = ['--dynamic'] if args.dynamic else []
    with tempfile.TemporaryDirectory() as folder:
        models = {name: (path, '') for name, path in export_models(folder).items()}
        models.update({name: (xml, library) for name, xml, library in args.extra})
        samples = collections.defaultdict(list)
        for _ in range(args.rounds):
            for batch in args.batch:
                for precision in args.precision:
                    for name, (path, library) in models.items():
                        samples[name, precision, batch].append(run_child(
                            *shape_flag, '--warmup', args.warmup, '--repeat', args.repeat,
                            '--child', 'time', path, batch, precision, library, args.threads))
        if args.profile:
            for precision in args.precision:
                for name, (path, library) in models.items():
                    profiles[name, precision] = run_child(
                        *shape_flag, '--warmup', args.warmup, '--child', 'profile', path,
                        max(args.batch), precision, library, args.threads)
    for (name, precision, batch), times in samples.items():
        anchor = statistics.median(samples[SHUFFLENET, precision, batch])
        median = statistics.median(times)
        rows.append(dict(model=name, precision=precision, batch=batch, median_ms=median,
                         min_ms=min(times), max_ms=max(times), vs_shufflenet=median / anchor))
    print(f'\nOpenVINO CPU, {args.threads} threads, 224x224, '
          f'{"dynamic batch" if args.dynamic else "static shapes"}, median of {args.rounds} '
          f'rounds (each the median of {args.repeat} calls, its own process); {cpu_model()}')
    print(format_table(rows, [('model', '{model}'), ('precision', '{precision}'),
                              ('batch', '{batch}'), ('ms', '{median_ms:.1f}'),
                              ('spread', '{min_ms:.1f}-{max_ms:.1f}'),
                              ('x ShuffleNetV2', '{vs_shufflenet:.2f}')], args.markdown))
    for (name, precision), (by_type, runtime) in profiles.items():
        print(f'\nProfile of {name}, {precision}, batch {max(args.batch)} (ms by node type, '
              f'total {sum(by_type.values()):.1f}); runtime graph: ' +
              ', '.join(f'{count} {kind}' for kind, count in runtime.items()))
        top = sorted(by_type.items(), key=lambda item: -item[1])
        print(format_table([dict(kind=kind, ms=ms) for kind, ms in top if ms >= 0.05],
                           [('node type', '{kind}'), ('ms', '{ms:.1f}')], args.markdown))
        rows.append(dict(model=name, precision=precision, batch=max(args.batch),
                         profile_ms=by_type, runtime_nodes=runtime))
    write_json(rows, args.json)
    return 0


if __name__ == '__main__':
    sys.exit(main())
