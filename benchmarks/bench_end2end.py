"""Speed of a detector's end-to-end export (priors, decoding, score threshold,
NMS in the graph: dets/labels) against its raw export (the head tensors), in
onnxruntime and OpenVINO, at each --batch.

The raw export does only the network; the end-to-end one adds the
post-processing, so ``nms_ms = end2end_ms - raw_ms`` is its cost and
``kept = raw_ms / end2end_ms`` the share of the raw speed that remains
(target: at least 0.9). Without --checkpoint the weights are random: every
prior then scores above ``score_thr`` for every class, so ``nms_pre``
candidates per level reach NMS, the most work it can get. Example::

    python benchmarks/bench_end2end.py --batch 1 32 --threads 2 --markdown
"""
import os.path as osp
import sys
import tempfile

import numpy as np
import torch

from benchmark_utils import (REPO_ROOT, apply_settings, benchmark_parser, format_table,
                             machine_lines, positive_int, time_interleaved, write_json)

DEFAULT_CONFIG = osp.join(REPO_ROOT, 'configs', 'ssd', 'dicenet-s0.5_ssd300_shapes.py')
BACKENDS = ('onnxruntime', 'openvino')


def parse_args(argv=None):
    parser = benchmark_parser(__doc__, warmup=2, repeat=10, threads=2)
    parser.add_argument('--config', default=DEFAULT_CONFIG, help='single-stage detector config')
    parser.add_argument('--checkpoint', help='its weights (default: random)')
    parser.add_argument('--size', type=positive_int, nargs=2, default=[300, 300],
                        metavar=('H', 'W'), help='input height and width')
    parser.add_argument('--batch', type=positive_int, nargs='+', default=[1, 32])
    parser.add_argument('--backends', nargs='+', default=list(BACKENDS), choices=BACKENDS)
    return parser.parse_args(argv)


def export_both(config, checkpoint, size, folder):
    """{form: .onnx path} of the raw and end-to-end exports of the deploy form."""
    from mmdice.apis import build_model_from_config, deploy_module, describe_end2end, export_onnx
    torch.manual_seed(0)
    model = build_model_from_config(config, checkpoint, deploy=True)
    example = torch.randn(1, 3, *size)
    paths = {}
    for form, raw in (('raw', True), ('end2end', False)):
        module, names = deploy_module(model, example, raw=raw)
        if not raw:
            print(describe_end2end(module))
        paths[form] = osp.join(folder, f'{form}.onnx')
        export_onnx(module, example, paths[form], output_names=names)
    return paths


def main(argv=None):
    args = parse_args(argv)
    malloc = apply_settings(args.threads, args.system_malloc)
    from mmdice.apis import Runtime
    print('\n'.join(machine_lines(malloc, packages=('onnxruntime', 'openvino'))))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        paths = export_both(args.config, args.checkpoint, args.size, folder)
        for backend in args.backends:
            runtimes = {form: Runtime(path, backend, threads=args.threads)
                        for form, path in paths.items()}
            for batch in args.batch:
                inputs = np.random.default_rng(0).standard_normal(
                    (batch, 3, *args.size), dtype=np.float32)
                cases = {form: (lambda runtime=runtime: runtime(inputs))
                         for form, runtime in runtimes.items()}
                timing = time_interleaved(cases, args.warmup, args.repeat)
                raw, end2end = timing['raw'].median_ms, timing['end2end'].median_ms
                rows.append(dict(backend=backend, batch=batch, raw_ms=raw, end2end_ms=end2end,
                                 nms_ms=end2end - raw, kept=raw / end2end))
    print(f'{args.config}, {args.size[0]} x {args.size[1]}, weights: '
          f'{args.checkpoint or "random (NMS gets every candidate)"}')
    print(format_table(rows, [('backend', '{backend}'), ('batch', '{batch}'),
                              ('raw ms', '{raw_ms:.1f}'), ('end2end ms', '{end2end_ms:.1f}'),
                              ('post-processing + NMS ms', '{nms_ms:.1f}'),
                              ('kept (raw / end2end)', '{kept:.2f}')], args.markdown))
    write_json(rows, args.json)
    return 0


if __name__ == '__main__':
    sys.exit(main())
