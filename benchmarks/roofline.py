"""The fused DiCE op of DiCENet s=2.4 against this machine's roofline and oneDNN's depth-wise 3x3.

Measures the machine first: copy bandwidth (a large ``Tensor.copy_``, bytes
read + written) and the FMA rate that oneDNN reaches (a float32 GEMM). Then,
for every DiCE shape of DiCENet s=2.4 at 224x224 (the ``DimConvFuse2d`` layers
of its deploy form) and each batch: the time of the PyTorch op on a
channels-last input, the bytes it must move (input, output and weights once)
and its FLOPs, the roofline bound ``max(bytes / bandwidth, FLOPs / rate)`` and
the fraction of it reached, and oneDNN's channels-last depth-wise 3x3
convolution on the same tensor. With ``--openvino`` the ``DiCEFuse`` node is
timed too: its own time in OpenVINO's per-node profile (``PERF_COUNT``), in the
channels-last IR of the one layer compiled for each batch (in its own process;
the Transposes around the node are not counted). Example::

    python benchmarks/roofline.py --batch 1 32 --threads 2 --openvino --markdown
"""
import argparse
import json
import subprocess
import sys
import tempfile

import torch

from benchmark_utils import (apply_settings, benchmark_parser, config_path, format_table,
                             machine_lines, time_infer_request, time_interleaved, write_json)

CONFIG = config_path('dicenet/dicenet-s2.4_8xb64_in1k.py')
#: FLOPs per output element: three branches of k*k multiply-adds, then per
#: branch an affine term, a PReLU and a weighted sum, and the last PReLU.
EPILOGUE_FLOPS = 3 * 6 + 2


def dice_shapes():
    """{(C, H, W): count} of the fused DiCE layers of DiCENet s=2.4's deploy form."""
    from mmdice.apis import build_model_from_config
    from mmdice.ops import DimConvFuse2d
    model = build_model_from_config(CONFIG, deploy=True)
    shapes = {}
    for layer in model.modules():
        if isinstance(layer, DimConvFuse2d):
            key = (layer.channels, *layer.build_size)
            shapes[key] = shapes.get(key, 0) + 1
    return shapes


def copy_bandwidth(repeat):
    """GB/s of a 256 MiB float32 copy (bytes read plus bytes written)."""
    source = torch.randn(64 * 2**20)
    target = torch.empty_like(source)
    times = time_interleaved({'copy': lambda: target.copy_(source)}, 1, repeat)
    return 2 * source.numel() * 4 / times['copy'].median_ms / 1e6


def fma_rate(repeat):
    """GFLOP/s of a 2048 x 2048 float32 GEMM (oneDNN / the BLAS torch uses)."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    times = time_interleaved({'gemm': lambda: a @ b}, 1, repeat)
    return 2 * 2048**3 / times['gemm'].median_ms / 1e6


def dice_layer(channels, height, width):
    """A fused DiCE layer with random coefficients, in eval mode."""
    from mmdice.ops import DimConvFuse2d
    layer = DimConvFuse2d(channels, (height, width)).eval()
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.uniform_(-0.5, 1)
    return layer


def cost(batch, channels, height, width):
    """(bytes moved, FLOPs) of the fused op on a float32 (batch, C, H, W) input."""
    outputs = batch * channels * height * width
    weights = (channels + height + width) * 9 + channels * 14
    return 4 * (2 * outputs + weights), outputs * (2 * 27 + EPILOGUE_FLOPS)


def time_openvino(shapes, batches, threads, warmup, repeat):
    """{(batch, C, H, W): median ms of the DiCEFuse node} from OpenVINO's
    profile of one-layer IRs compiled for each batch (run as a child of the
    benchmark)."""
    import statistics

    import numpy as np

    from mmdice.apis import compile_openvino, export_openvino
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for channels, height, width in shapes:
            layer = dice_layer(channels, height, width)
            path = f'{folder}/dice_{channels}x{height}x{width}.xml'
            export_openvino(layer, torch.randn(1, channels, height, width), path)
            for batch in batches:
                shape = (batch, channels, height, width)
                request = compile_openvino(path, 'f32', threads, config={'PERF_COUNT': True},
                                           input_shape=shape).create_infer_request()
                x = np.random.randn(*shape).astype(np.float32)
                for _ in range(warmup):
                    request.infer({0: x})
                node_ms = []
                for _ in range(repeat):
                    request.infer({0: x})
                    node_ms.append(sum(info.real_time.total_seconds() * 1e3
                                       for info in request.profiling_info
                                       if info.node_type == 'Reference'))
                results['x'.join(map(str, shape))] = statistics.median(node_ms)
    return results


def main(argv=None):
    parser = benchmark_parser(__doc__, warmup=3, repeat=10)
    parser.add_argument('--batch', type=int, nargs='+', default=[1, 32])
    parser.add_argument('--openvino', action='store_true', help='also time the DiCEFuse node')
    parser.add_argument('--openvino-child', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    malloc = apply_settings(args.threads, args.system_malloc)
    shapes = dice_shapes()
    if args.openvino_child:
        print(json.dumps(time_openvino(shapes, args.batch, torch.get_num_threads(), args.warmup,
                                       args.repeat)))
        return 0
    print('\n'.join(machine_lines(malloc)))
    bandwidth, rate = copy_bandwidth(args.repeat), fma_rate(args.repeat)
    print(f'copy bandwidth {bandwidth:.1f} GB/s, float32 GEMM {rate:.1f} GFLOP/s')
    openvino = {}
    if args.openvino:
        command = [sys.executable, __file__, '--openvino-child', '--threads',
                   str(torch.get_num_threads()), '--warmup', str(args.warmup), '--repeat',
                   str(args.repeat), '--batch', *map(str, args.batch)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        openvino = json.loads(output.strip().splitlines()[-1])
    rows = []
    for channels, height, width in shapes:
        layer = dice_layer(channels, height, width)
        depthwise = torch.nn.Conv2d(channels, channels, 3, padding=1, groups=channels).eval()
        for batch in args.batch:
            x = torch.randn(batch, channels, height, width).contiguous(
                memory_format=torch.channels_last)
            with torch.no_grad():
                times = time_interleaved({'dice': lambda: layer(x),
                                          'depthwise': lambda: depthwise(x)},
                                         args.warmup, args.repeat)
            moved, flops = cost(batch, channels, height, width)
            bound_ms = max(moved / bandwidth / 1e6, flops / rate / 1e6)
            dice_ms = times['dice'].median_ms
            node_ms = openvino.get(f'{batch}x{channels}x{height}x{width}')
            rows.append(dict(
                batch=batch, channels=channels, height=height, width=width,
                layers=shapes[channels, height, width], dice_ms=dice_ms,
                depthwise_ms=times['depthwise'].median_ms,
                vs_depthwise=dice_ms / times['depthwise'].median_ms, mbytes=moved / 1e6,
                mflops=flops / 1e6, bound_ms=bound_ms, roofline_fraction=bound_ms / dice_ms,
                openvino_ms=node_ms,
                openvino_vs_depthwise=None if node_ms is None else
                node_ms / times['depthwise'].median_ms,
                copy_gbps=bandwidth, gemm_gflops=rate))
    print(format_table(rows, [
        ('batch', '{batch}'), ('CxHxW', '{channels}x{height}x{width}'), ('layers', '{layers}'),
        ('dice_fuse ms', '{dice_ms:.2f}'), ('dw 3x3 ms', '{depthwise_ms:.2f}'),
        ('x dw', '{vs_depthwise:.2f}'), ('MB', '{mbytes:.1f}'), ('MFLOP', '{mflops:.0f}'),
        ('bound ms', '{bound_ms:.2f}'), ('of bound', '{roofline_fraction:.0%}'),
        ('OpenVINO node ms', '{openvino_ms:.2f}'), ('node x dw', '{openvino_vs_depthwise:.2f}'),
    ], args.markdown))
    write_json(rows, args.json)
    return 0


if __name__ == '__main__':
    sys.exit(main())
