"""Benchmark whole DiCENet training steps: fused DimConv against the authors' way.

A step is zero_grad, forward, cross-entropy loss, backward and an SGD update
(momentum 0.9, weight decay and lr of the config's optimizer) of a model
built from its config:

* ``cls-s1.0``, ``cls-s2.4``: mmpretrain ImageClassifier (mmdice.DiCENet +
  GAP + mmdice.DiCEClsHead) of configs/dicenet/dicenet-s{1.0,2.4}_8xb64_in1k.py
  on 224x224 images;
* ``seg-s1.0``: mmseg EncoderDecoder of
  configs/dicenet_seg/dicenet-s1.0_1xb32-100e_voc12aug-384x384.py on
  384x384 crops (DiCE units built for 224, so every DimConv runs at another
  size than its build size), logits upsampled to the labels as the decode
  head's loss does.

Path ``fused`` is the package as shipped (torch.ops.mmdice.dim_conv);
``authors`` monkeypatches DimConv2d to ``dim_conv_reference``, the authors'
three grouped convolutions with axis transposes and resampling. Every
(model, path) runs in its own process, so its peak resident memory
(``ru_maxrss``) is its own; "step peak" is that peak above the resident size
once the model, optimizer and batch exist. Times are the median and the
min..max of ``--steps`` steps after ``--warmup`` steps, in ms. "loss" is the
first step's loss, which both paths compute from the same weights and batch.

Example::

    python benchmarks/bench_train_step.py --markdown
    python benchmarks/bench_train_step.py --models cls-s1.0 --profile 15
    python benchmarks/bench_train_step.py --models cls-s1.0 --compile --explain
"""
import argparse
import importlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

MODELS = {
    'cls-s1.0': dict(config='configs/dicenet/dicenet-s1.0_8xb64_in1k.py', scope='mmpretrain',
                     size=224),
    'cls-s2.4': dict(config='configs/dicenet/dicenet-s2.4_8xb64_in1k.py', scope='mmpretrain',
                     size=224),
    'seg-s1.0': dict(config='configs/dicenet_seg/dicenet-s1.0_1xb32-100e_voc12aug-384x384.py',
                     scope='mmseg', size=384),
}
PATHS = ('fused', 'authors')
# Relative difference of the two paths' first losses that counts as agreement.
LOSS_TOLERANCE = 1e-4


def build(model_name, batch, size):
    """(model, optimizer, loss_fn, images, labels) of a model in train mode."""
    import torch
    import torch.nn.functional as F
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmdice.models  # noqa: F401  (registers mmdice.*)

    spec = MODELS[model_name]
    cfg = Config.fromfile(os.path.join(REPO_ROOT, spec['config']))
    init_default_scope(spec['scope'])
    torch.manual_seed(0)  # the same initial weights in every process
    if spec['scope'] == 'mmseg':
        from mmseg.registry import MODELS as REGISTRY
    else:
        from mmpretrain.registry import MODELS as REGISTRY
    model = REGISTRY.build(cfg.model)
    model.train()
    optimizer_cfg = cfg.optim_wrapper.optimizer
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                                lr=optimizer_cfg.lr, momentum=optimizer_cfg.momentum,
                                weight_decay=optimizer_cfg.weight_decay)
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, size, size, generator=generator)
    if spec['scope'] == 'mmseg':
        num_classes = cfg.model.decode_head.num_classes
        labels = torch.randint(0, num_classes, (batch, size, size), generator=generator)

        def loss_fn(logits):
            logits = F.interpolate(logits, size=labels.shape[1:], mode='bilinear',
                                   align_corners=cfg.model.decode_head.align_corners)
            return F.cross_entropy(logits, labels, ignore_index=255)
    else:
        labels = torch.randint(0, cfg.model.head.num_classes, (batch, ), generator=generator)

        def loss_fn(logits):
            return F.cross_entropy(logits, labels)

    return model, optimizer, loss_fn, images


def use_authors_dim_conv():
    """Make every DimConv2d compute the authors' way (dim_conv_reference)."""
    dim_conv_module = importlib.import_module('mmdice.ops.dim_conv')
    dim_conv_module.dim_conv = dim_conv_module.dim_conv_reference


def top_ops(step, count):
    """The `count` ops with the most self CPU time in one step, as a table."""
    import torch
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        step()
    return profile.key_averages().table(sort_by='self_cpu_time_total', row_limit=count)


def explain(model, images, loss_fn):
    """Graphs and graph breaks of torch.compile tracing forward + loss."""
    import torch
    explanation = torch._dynamo.explain(lambda x: loss_fn(model(x, mode='tensor')))(images)
    torch._dynamo.reset()
    return dict(graphs=explanation.graph_count, graph_breaks=explanation.graph_break_count,
                break_reasons=[str(reason.reason) for reason in explanation.break_reasons])


def worker(args):
    """Time one (model, path) in this process and print one JSON line."""
    import torch
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if not args.system_malloc:
        from bench_dim_conv import reuse_large_allocations
        reuse_large_allocations()
    model_name, path = args.worker
    if path == 'authors':
        use_authors_dim_conv()
    size = args.size or MODELS[model_name]['size']
    model, optimizer, loss_fn, images = build(model_name, args.batch, size)
    result = dict(model=model_name, path=path, batch=args.batch, size=size,
                  compiled=args.compile)
    if args.explain:
        result['explain'] = explain(model, images, loss_fn)
    forward = torch.compile(model) if args.compile else model

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(forward(images, mode='tensor'))
        loss.backward()
        optimizer.step()
        return loss.item()

    baseline_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    torch.manual_seed(0)
    first_start = time.perf_counter()
    result['loss'] = step()
    result['first_step_ms'] = (time.perf_counter() - first_start) * 1e3
    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result.update(median_ms=statistics.median(times), min_ms=min(times), max_ms=max(times),
                  peak_mib=peak_kib / 1024, step_peak_mib=(peak_kib - baseline_kib) / 1024)
    if args.profile:
        result['profile'] = top_ops(step, args.profile)
    print('RESULT ' + json.dumps(result), flush=True)


def run_worker(args, model_name, path):
    command = [sys.executable, os.path.abspath(__file__), '--worker', model_name, path,
               '--batch', str(args.batch), '--steps', str(args.steps), '--warmup',
               str(args.warmup)]
    for flag, value in (('--size', args.size), ('--threads', args.threads),
                        ('--profile', args.profile)):
        if value:
            command += [flag, str(value)]
    for flag in ('system_malloc', 'explain', 'compile'):
        if getattr(args, flag):
            command.append('--' + flag.replace('_', '-'))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [REPO_ROOT, os.environ.get('PYTHONPATH')])))
    completed = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = [line for line in completed.stdout.splitlines() if line.startswith('RESULT ')]
    if completed.returncode != 0 or not lines:
        raise SystemExit(f'{model_name} / {path} failed:\n{completed.stderr[-4000:]}')
    return json.loads(lines[-1][len('RESULT '):])


def format_table(rows, markdown):
    header = ['model', 'batch', 'size', 'path', 'median ms', 'min..max ms', 'speed-up',
              'peak MiB', 'step peak MiB', 'loss']
    authors = {row['model']: row for row in rows if row['path'] == 'authors'}
    body = []
    for row in rows:
        reference = authors.get(row['model'])
        speed_up = f"{reference['median_ms'] / row['median_ms']:.2f}x" if reference else '-'
        body.append([
            row['model'], str(row['batch']), str(row['size']),
            row['path'] + (' (compiled)' if row['compiled'] else ''), f"{row['median_ms']:.0f}",
            f"{row['min_ms']:.0f}..{row['max_ms']:.0f}", speed_up, f"{row['peak_mib']:.0f}",
            f"{row['step_peak_mib']:.0f}", f"{row['loss']:.6f}"
        ])
    if markdown:
        lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
        return '\n'.join(lines + ['| ' + ' | '.join(cells) + ' |' for cells in body])
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    return '\n'.join('  '.join(cell.rjust(width) for cell, width in zip(r, widths))
                     for r in [header] + body)


def losses_agree(rows):
    """Per model: the relative difference of the first losses of its paths."""
    by_model = {}
    for row in rows:
        by_model.setdefault(row['model'], []).append(row['loss'])
    return {model: (max(losses) - min(losses)) / max(1.0, abs(losses[0]))
            for model, losses in by_model.items()}


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'expected a positive int, got {text}')
    return value


def non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'expected an int >= 0, got {text}')
    return value


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', nargs='+', choices=sorted(MODELS), default=list(MODELS))
    parser.add_argument('--paths', nargs='+', choices=PATHS, default=list(PATHS))
    parser.add_argument('--batch', type=positive_int, default=32)
    parser.add_argument('--size', type=positive_int, default=None,
                        help='image side (default: 224 for classification, 384 for seg)')
    parser.add_argument('--steps', type=positive_int, default=5, help='timed steps')
    parser.add_argument('--warmup', type=non_negative_int, default=2,
                        help='untimed steps after the first')
    parser.add_argument('--threads', type=positive_int, default=None,
                        help='CPU threads for torch (default: torch.get_num_threads())')
    parser.add_argument('--profile', type=non_negative_int, default=0, metavar='N',
                        help='also print the N ops with the most self CPU time of one step')
    parser.add_argument('--compile', action='store_true',
                        help='time torch.compile(model) (inductor) instead of eager')
    parser.add_argument('--explain', action='store_true',
                        help='report graphs and graph breaks of torch._dynamo.explain')
    parser.add_argument('--system-malloc', action='store_true',
                        help="keep the C library's malloc settings (default: glibc reuses "
                        'large blocks, as in bench_dim_conv.py)')
    parser.add_argument('--markdown', action='store_true', help='print a markdown table')
    parser.add_argument('--worker', nargs=2, metavar=('MODEL', 'PATH'), help=argparse.SUPPRESS)
    return parser.parse_args()


def main():
    args = parse_args()
    if args.worker:
        worker(args)
        return
    import torch
    print(f'CPU: {platform.processor() or platform.machine()} ({os.cpu_count()} logical '
          f'cores), torch threads: {args.threads or torch.get_num_threads()}, torch '
          f'{torch.__version__}, Python {platform.python_version()}')
    print(f'batch {args.batch}, median and min..max of {args.steps} steps after '
          f'{1 + args.warmup} untimed steps; malloc: '
          f"{'system default' if args.system_malloc else 'large blocks reused'}")
    rows = [run_worker(args, model, path) for model in args.models for path in args.paths]
    print(format_table(rows, args.markdown))
    for model, difference in losses_agree(rows).items():
        verdict = 'agree' if difference <= LOSS_TOLERANCE else 'DIFFER'
        print(f'losses {verdict}: {model} relative difference {difference:.2e}')
    for row in rows:
        if 'explain' in row:
            info = row['explain']
            print(f"dynamo explain {row['model']} / {row['path']}: {info['graphs']} graph(s), "
                  f"{info['graph_breaks']} graph break(s) {info['break_reasons']}")
        if 'profile' in row:
            print(f"profile {row['model']} / {row['path']} (one step):\n{row['profile']}")


if __name__ == '__main__':
    main()
