"""Benchmark whole DiCENet training steps: the fused ops against the authors' way.

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

Path ``fused`` is the package as shipped (torch.ops.mmdice.dim_conv and
torch.ops.mmdice.batch_norm_prelu); ``authors`` computes the same model the
authors' way: DimConv2d as ``dim_conv_reference`` (three grouped convolutions
with axis transposes and resampling) and every BatchNorm + PReLU as the stock
``nn.BatchNorm2d`` and ``nn.PReLU`` operators; ``compiled``
(``--compile``) is torch.compile(model) with the fused op. All paths of a model
run in one process from the same initial weights and batch, a step of each in
turn, so changes of machine load hit them alike. Times are the median and the
min..max of ``--steps`` steps per path after ``1 + --warmup`` untimed ones, in
ms; "loss" is each path's first-step loss. Peak memory is ``ru_maxrss`` of a
fresh process running two steps of one path alone with glibc's own malloc
settings (so freed large blocks leave the resident set); "step peak" is that
peak above the resident size once the model, optimizer and batch exist.

Example::

    python benchmarks/bench_train_step.py --markdown
    python benchmarks/bench_train_step.py --models cls-s1.0 --profile 15
    python benchmarks/bench_train_step.py --models cls-s1.0 --compile --explain
    python benchmarks/bench_train_step.py --models cls-s1.0 --json train_step.json
"""
import argparse
import copy
import importlib
import json
import os
import resource
import subprocess
import sys
from functools import partial

import torch
import torch.nn.functional as F

from benchmark_utils import (apply_settings, benchmark_parser, config_path, format_table,
                             machine_lines, non_negative_int, positive_int, time_interleaved,
                             timed, write_json)
from mmdice.apis import TensorModeWrapper, build_model_from_config
from mmdice.utils import load_config

MODELS = {
    'cls-s1.0': dict(config='dicenet/dicenet-s1.0_8xb64_in1k.py', size=224),
    'cls-s2.4': dict(config='dicenet/dicenet-s2.4_8xb64_in1k.py', size=224),
    'seg-s1.0': dict(config='dicenet_seg/dicenet-s1.0_1xb32-100e_voc12aug-384x384.py', size=384),
}
PATHS = ('fused', 'authors')
# Relative difference of the two paths' first losses that counts as agreement.
LOSS_TOLERANCE = 1e-4
COLUMNS = [('model', '{model}'), ('batch', '{batch}'), ('size', '{size}'), ('path', '{path}'),
           ('median ms', '{median_ms:.0f}'), ('min..max ms', '{min_ms:.0f}..{max_ms:.0f}'),
           ('speed-up', '{speedup:.2f}x'), ('peak MiB', '{peak_mib:.0f}'),
           ('step peak MiB', '{step_peak_mib:.0f}'), ('loss', '{loss:.6f}')]


def build(model_name, batch, size):
    """(tensor-mode model, optimizer, loss_fn, images) of a model in train mode."""
    cfg = load_config(config_path(MODELS[model_name]['config']))
    torch.manual_seed(0)  # the same initial weights in every process
    model = build_model_from_config(cfg).train()
    optimizer_cfg = cfg.optim_wrapper.optimizer
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                                lr=optimizer_cfg.lr, momentum=optimizer_cfg.momentum,
                                weight_decay=optimizer_cfg.weight_decay)
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, size, size, generator=generator)
    if cfg.default_scope == 'mmseg':
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

    return TensorModeWrapper(model), optimizer, loss_fn, images


# (module, attribute, fused function name, authors' function name) that select_path switches.
PATH_FUNCTIONS = (('mmdice.ops.dim_conv', 'dim_conv', 'dim_conv', 'dim_conv_reference'),
                  ('mmdice.models.layers.norm_act', 'batch_norm_prelu', 'batch_norm_prelu',
                   'batch_norm_prelu_reference'))


def select_path(path):
    """Make DimConv2d and every BatchNorm + PReLU compute the fused way or the authors' way."""
    ops = importlib.import_module('mmdice.ops')
    for module_name, attribute, fused, authors in PATH_FUNCTIONS:
        function = getattr(ops, authors if path == 'authors' else fused)
        setattr(importlib.import_module(module_name), attribute, function)


def top_ops(step, count):
    """The `count` ops with the most self CPU time in one step, as a table."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        step()
    return profile.key_averages().table(sort_by='self_cpu_time_total', row_limit=count)


def explain(model, images, loss_fn):
    """Graphs and graph breaks of torch.compile tracing forward + loss."""
    explanation = torch._dynamo.explain(lambda x: loss_fn(model(x)))(images)
    torch._dynamo.reset()
    return dict(graphs=explanation.graph_count, graph_breaks=explanation.graph_break_count,
                break_reasons=[str(reason.reason) for reason in explanation.break_reasons])


def setup_worker(args):
    model_name = args.worker[0]
    size = args.size or MODELS[model_name]['size']
    return model_name, size, build(model_name, args.batch, size)


def time_worker(args):
    """Time every path of one model in this process, a step of each in turn (so that
    changes of machine load hit all paths alike); print one JSON line."""
    apply_settings(args.threads, args.system_malloc)
    model_name, size, (model, optimizer, loss_fn, images) = setup_worker(args)
    paths = list(args.paths) + (['compiled'] if args.compile else [])
    forwards = {path: model for path in args.paths}
    if args.compile:
        forwards['compiled'] = torch.compile(model)
    result = dict(model=model_name, batch=args.batch, size=size, paths={})
    if args.explain:
        select_path('fused')
        result['explain'] = explain(model, images, loss_fn)

    def step(path):
        select_path('authors' if path == 'authors' else 'fused')
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(forwards[path](images))
        loss.backward()
        optimizer.step()
        return loss.item()

    initial = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
    for path in paths:  # the first step of each path from the same weights
        torch.manual_seed(0)
        loss, first_step_ms = timed(partial(step, path))
        result['paths'][path] = dict(loss=loss, first_step_ms=first_step_ms)
        model.load_state_dict(initial[0])
        optimizer.load_state_dict(initial[1])
    times = time_interleaved({path: partial(step, path) for path in paths}, args.warmup,
                             args.repeat)
    for path in paths:
        result['paths'][path].update(times[path]._asdict())
        if args.profile:
            result['paths'][path]['profile'] = top_ops(partial(step, path), args.profile)
    print('RESULT ' + json.dumps(result), flush=True)


def memory_worker(args):
    """Peak resident memory of steps of one (model, path) alone in this process, with
    the C library's own malloc settings (freed large blocks go back to the system)."""
    path = args.worker[1]
    apply_settings(args.threads, system_malloc=True)
    model_name, size, (model, optimizer, loss_fn, images) = setup_worker(args)
    select_path(path)
    baseline_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(2):
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(images)).backward()
        optimizer.step()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print('RESULT ' + json.dumps(dict(peak_mib=peak_kib / 1024,
                                      step_peak_mib=(peak_kib - baseline_kib) / 1024)),
          flush=True)


def run_worker(args, model_name, mode):
    """Runs this script as a worker for ``model_name``: ``mode`` 'time' or a path (memory)."""
    command = [sys.executable, os.path.abspath(__file__), '--worker', model_name, mode,
               '--batch', str(args.batch), '--steps', str(args.repeat), '--warmup',
               str(args.warmup), '--paths', *args.paths]
    for flag, value in (('--size', args.size), ('--threads', args.threads),
                        ('--profile', args.profile)):
        if value:
            command += [flag, str(value)]
    for flag in ('system_malloc', 'explain', 'compile'):
        if getattr(args, flag):
            command.append('--' + flag.replace('_', '-'))
    completed = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in completed.stdout.splitlines() if line.startswith('RESULT ')]
    if completed.returncode != 0 or not lines:
        raise SystemExit(f'{model_name} / {mode} failed:\n{completed.stderr[-4000:]}')
    return json.loads(lines[-1][len('RESULT '):])


def measure(args, model_name):
    """Rows (one per path) of one model: times, first loss, peak memory, and the
    speed-up over the authors' path (None without it)."""
    timing = run_worker(args, model_name, 'time')
    rows = []
    for path, values in timing['paths'].items():
        memory = run_worker(args, model_name, 'fused' if path == 'compiled' else path) \
            if path != 'compiled' else dict(peak_mib=None, step_peak_mib=None)
        rows.append(dict(model=model_name, batch=timing['batch'], size=timing['size'], path=path,
                         **values, **memory, explain=timing.get('explain')))
    authors = timing['paths'].get('authors')
    for row in rows:
        row['speedup'] = authors['median_ms'] / row['median_ms'] if authors else None
    return rows


def losses_agree(rows):
    """Per model: the largest relative difference of the first losses of its eager paths
    (a compiled step draws its dropout masks from inductor's own generator)."""
    by_model = {}
    for row in rows:
        if row['path'] != 'compiled':
            by_model.setdefault(row['model'], []).append(row['loss'])
    return {model: (max(losses) - min(losses)) / max(1.0, abs(losses[0]))
            for model, losses in by_model.items()}


def parse_args():
    parser = benchmark_parser(__doc__, warmup=2, repeat=5, repeat_flag='--steps')
    parser.add_argument('--models', nargs='+', choices=sorted(MODELS), default=list(MODELS))
    parser.add_argument('--paths', nargs='+', choices=PATHS, default=list(PATHS))
    parser.add_argument('--batch', type=positive_int, default=32)
    parser.add_argument('--size', type=positive_int, default=None,
                        help='image side (default: 224 for classification, 384 for seg)')
    parser.add_argument('--profile', type=non_negative_int, default=0, metavar='N',
                        help='also print the N ops with the most self CPU time of one step')
    parser.add_argument('--compile', action='store_true',
                        help='also time torch.compile(model) (inductor) with the fused op')
    parser.add_argument('--explain', action='store_true',
                        help='report graphs and graph breaks of torch._dynamo.explain')
    parser.add_argument('--worker', nargs=2, metavar=('MODEL', 'MODE'), help=argparse.SUPPRESS)
    return parser.parse_args()


def main():
    args = parse_args()
    if args.worker:
        (time_worker if args.worker[1] == 'time' else memory_worker)(args)
        return
    malloc = apply_settings(args.threads, args.system_malloc)
    for line in machine_lines(f'{malloc} for the timed steps'):
        print(line)
    print(f'batch {args.batch}; median and min..max of {args.repeat} steps per path after '
          f'{1 + args.warmup} untimed ones, the paths\' steps in turn in one process; peak '
          'memory of 2 steps of each path alone in a fresh process (malloc: system default)')
    rows = [row for model in args.models for row in measure(args, model)]
    print(format_table(rows, COLUMNS, args.markdown))
    for model, difference in losses_agree(rows).items():
        verdict = 'agree' if difference <= LOSS_TOLERANCE else 'DIFFER'
        print(f'losses {verdict}: {model} relative difference {difference:.2e}')
    for row in rows:
        if row['explain'] and row['path'] == args.paths[0]:
            info = row['explain']
            print(f"dynamo explain {row['model']}: {info['graphs']} graph(s), "
                  f"{info['graph_breaks']} graph break(s) {info['break_reasons']}")
        if 'profile' in row:
            print(f"profile {row['model']} / {row['path']} (one step):\n{row['profile']}")
    write_json(rows, args.json)


if __name__ == '__main__':
    main()
