"""Inference speed of DiCENet (training and deploy forms) against ShuffleNetV2 and MobileNets.

Eval-mode forward of the whole classifier (backbone, pooling, head) on random
images, in four forms: ``eager`` (NCHW), ``eager-cl`` (channels-last model and
input), ``compile`` (``torch.compile``, default mode) and ``onnx``
(``tools/deployment/pytorch2onnx.py``'s export run by onnxruntime). Within each
repeat every (model, form) runs once in turn, so load changes hit them alike;
the table gives the median over the repeats, the spread (min - max), images/s,
and the ratio of the median to ShuffleNetV2 x1.5 in the same form.

``--segmentation`` times the VOC segmentor
(configs/dicenet_seg/dicenet-s1.0_1xb32-100e_voc12aug-384x384.py) at 384x384 and
``--detection`` the SSD300 detector (configs/ssd/dicenet_ssd300_voc0712.py, head
outputs) at 300x300, training against deploy form, eager NCHW and channels-last,
random weights.

Example (the numbers in benchmarks/RESULTS.md):
    python benchmarks/bench_backbones.py --batch 1 32 --markdown
    python benchmarks/bench_backbones.py --models dicenet-s2.4-deploy shufflenet_v2_x1_5 \\
        --forms eager --batch 32 --repeat 3
    python benchmarks/bench_backbones.py --models dicenet-s2.4 dicenet-s2.4-deploy \\
        --batch 32 --profile 14 --no-complexity
    python benchmarks/bench_backbones.py --detection --batch 1 --json detection.json
"""
import copy
import logging
import os.path as osp
import tempfile
from functools import partial

import torch
from torch import nn

from benchmark_utils import (apply_settings, benchmark_parser, config_path, format_table,
                             machine_lines, non_negative_int, positive_int, time_interleaved,
                             write_json)
from mmdice.apis import TensorModeWrapper, build_model_from_config
from mmdice.models import switch_to_deploy
from mmdice.utils import load_config

DICE_SCALES = ('1.0', '2.0', '2.4')
TORCHVISION_MODELS = ('shufflenet_v2_x1_5', 'shufflenet_v2_x1_0', 'mobilenet_v2',
                      'mobilenet_v3_large')
MODELS = tuple(f'dicenet-s{s}{form}' for s in DICE_SCALES
               for form in ('', '-deploy')) + TORCHVISION_MODELS
FORMS = ('eager', 'eager-cl', 'compile', 'onnx')
BASELINE = 'shufflenet_v2_x1_5'


class SegmentationLogits(TensorModeWrapper):
    """An mmseg segmentor as tensor -> logits at the input size (``encode_decode``:
    the decode head's outputs resized to the input, as its prediction does)."""

    def forward(self, x):
        return self.model.encode_decode(x, [dict(img_shape=x.shape[2:])])


#: Dense-prediction models timed training form against deploy form: config,
#: tensor -> tensors wrapper, row label.
DENSE_TASKS = {
    'segmentation': (config_path('dicenet_seg/dicenet-s1.0_1xb32-100e_voc12aug-384x384.py'),
                     SegmentationLogits, 'dicenet-s1.0 voc seg'),
    'detection': (config_path('ssd/dicenet_ssd300_voc0712.py'), TensorModeWrapper,
                  'dicenet-s2.4 ssd300 voc'),
}


def build_random(config: str, deploy: bool, wrapper=TensorModeWrapper) -> nn.Module:
    """``wrapper`` around the model of ``config`` with its own random initialisation
    (``init_weights``; no pretrained backbone), eval mode, converted to the deploy
    form after the initialisation when ``deploy``."""
    cfg = load_config(config)
    cfg.model.backbone.pop('init_cfg', None)
    model = build_model_from_config(cfg)
    model.init_weights()
    if deploy:
        switch_to_deploy(model)
    return wrapper(model)


def build_model(name: str) -> nn.Module:
    """The classifier ``name`` of MODELS, randomly initialised, eval mode."""
    if name.startswith('dicenet-s'):
        scale = name[len('dicenet-s'):].replace('-deploy', '')
        return build_random(config_path(f'dicenet/dicenet-s{scale}_8xb64_in1k.py'),
                            name.endswith('-deploy'))
    import torchvision
    return getattr(torchvision.models, name)(weights=None).eval()


def complexity(name: str, model: nn.Module, size: int):
    """(paper-convention GFLOPs, M params) at batch 1; a deploy form gets the
    FLOPs of its training form (the same network; the fused op is not counted
    by the analyzer) and its own parameter count."""
    from mmdice.models.utils.complexity import count_complexity
    counted = build_model(name.replace('-deploy', '')) if name.endswith('-deploy') else model
    counts = count_complexity(counted, (torch.randn(1, 3, size, size), ))
    return counts['paper_flops'] / 1e9, sum(p.numel() for p in model.parameters()) / 1e6


class OnnxRunner:
    """onnxruntime session of the model's ONNX export, called like the model."""

    def __init__(self, model: nn.Module, example: torch.Tensor, threads: int):
        from mmdice.apis import export_onnx, onnx_session
        path = osp.join(tempfile.mkdtemp(prefix='bench_onnx_'), 'model.onnx')
        export_onnx(model, example, path)
        self.session = onnx_session(path, threads)
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x):
        return self.session.run(None, {self.input_name: x.numpy()})


def make_runner(model: nn.Module, form: str, example: torch.Tensor, threads: int):
    """A callable () -> outputs: ``model`` in ``form`` on ``example``."""
    if form == 'eager':
        return partial(model, example)
    if form == 'eager-cl':
        return partial(copy.deepcopy(model).to(memory_format=torch.channels_last),
                       example.contiguous(memory_format=torch.channels_last))
    if form == 'compile':
        return partial(torch.compile(model), example)
    if form == 'onnx':
        return partial(OnnxRunner(model, example, threads), example)
    raise ValueError(f'unknown form {form!r}')


def time_tables(models, forms, size, args, columns, complete_rows):
    """For each batch of ``args.batch``: the eval forward of every (model, form) on
    a random (batch, 3, size, size) input, run in turn, as rows that
    ``complete_rows(rows)`` adds fields to, printed as a table. Returns all rows."""
    all_rows = []
    for batch in args.batch:
        example = torch.randn(batch, 3, size, size)
        cases = {(name, form): make_runner(model, form, example, args.threads)
                 for name, model in models.items() for form in forms}
        with torch.inference_mode():
            times = time_interleaved(cases, args.warmup, args.repeat)
        rows = [dict(model=name, form=form, batch=batch, **timing._asdict(),
                     images_per_s=batch * 1e3 / timing.median_ms)
                for (name, form), timing in times.items()]
        complete_rows(rows)
        print(format_table(rows, columns, args.markdown))
        print()
        all_rows += rows
    return all_rows


TIMING_COLUMNS = [('model', '{model}'), ('form', '{form}'), ('batch', '{batch}'),
                  ('median ms', '{median_ms:.1f}'), ('spread ms', '{min_ms:.1f}-{max_ms:.1f}'),
                  ('images/s', '{images_per_s:.1f}')]
CLASSIFIER_COLUMNS = TIMING_COLUMNS + [(f'x {BASELINE}', '{median_vs_baseline:.2f}'),
                                       ('GFLOPs', '{gflops:.3f}'), ('M params', '{mparams:.2f}')]
DENSE_COLUMNS = [('model', '{model} {variant}')] + TIMING_COLUMNS[1:] + [
    ('x training', '{speedup_vs_training:.2f} faster')]


def print_profiles(models, batches, size, count):
    """The ``count`` ops with the most self CPU time in 3 eager forwards of each model,
    for each batch of ``batches`` of random (batch, 3, size, size) inputs."""
    for batch in batches:
        example = torch.randn(batch, 3, size, size)
        for name, model in models.items():
            with torch.no_grad():
                model(example)
                with torch.profiler.profile(
                        activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                    for _ in range(3):
                        model(example)
            print(f'profile {name}, batch {batch}, 3 forwards:')
            print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=count))


def run_classifiers(args):
    """Rows of the classifiers of ``args.models`` in ``args.forms``, a table per batch."""
    models = {name: build_model(name) for name in args.models}
    if args.profile:
        print_profiles(models, args.batch, args.size, args.profile)
        return []
    info = {name: complexity(name, model, args.size) for name, model in models.items()} \
        if args.complexity else {}

    def add_baseline_ratio_and_complexity(rows):
        baseline = {row['form']: row['median_ms'] for row in rows if row['model'] == BASELINE}
        for row in rows:
            base = baseline.get(row['form'])
            gflops, mparams = info.get(row['model'], (None, None))
            row.update(median_vs_baseline=row['median_ms'] / base if base else None,
                       gflops=gflops, mparams=mparams)

    return time_tables(models, args.forms, args.size, args, CLASSIFIER_COLUMNS,
                       add_baseline_ratio_and_complexity)


def run_dense(args, task: str, size: int):
    """Rows of the training against the deploy form of the segmentor or detector
    at ``size``, a table per batch."""
    config, wrapper, label = DENSE_TASKS[task]
    forms = [form for form in args.forms if form in ('eager', 'eager-cl')] or ['eager']
    models = {'training': build_random(config, False, wrapper),
              'deploy': build_random(config, True, wrapper)}
    label = f'{label} {size}x{size}'
    if args.profile:
        print_profiles({f'{label} {name}': model for name, model in models.items()}, args.batch,
                       size, args.profile)
        return []

    def add_label_and_speedup(rows):
        training = {row['form']: row['median_ms'] for row in rows if row['model'] == 'training'}
        for row in rows:
            row.update(model=label, variant=row['model'],
                       speedup_vs_training=training[row['form']] / row['median_ms'])

    return time_tables(models, forms, size, args, DENSE_COLUMNS, add_label_and_speedup)


def parse_args():
    parser = benchmark_parser(__doc__, warmup=2, repeat=7, threads=2)
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=MODELS)
    parser.add_argument('--forms', nargs='+', default=list(FORMS), choices=FORMS)
    parser.add_argument('--batch', nargs='+', type=positive_int, default=[1, 32])
    parser.add_argument('--size', type=positive_int, default=224, help='input side (classifiers)')
    parser.add_argument('--no-complexity', dest='complexity', action='store_false',
                        help='skip counting FLOPs and parameters')
    parser.add_argument('--segmentation', action='store_true',
                        help='time the VOC segmentor (training vs deploy) instead')
    parser.add_argument('--seg-size', type=positive_int, default=384)
    parser.add_argument('--detection', action='store_true',
                        help='time the SSD300 VOC detector (training vs deploy) instead')
    parser.add_argument('--det-size', type=positive_int, default=300)
    parser.add_argument('--profile', type=non_negative_int, default=0, metavar='N',
                        help='print the N ops with the most self CPU time of 3 eager forwards '
                        'of each model (classifiers, or the dense task) instead of timing')
    return parser.parse_args()


def main():
    args = parse_args()
    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().setLevel(logging.WARNING)  # no init_weights report
    malloc = apply_settings(args.threads, args.system_malloc)
    torch.manual_seed(0)
    for line in machine_lines(malloc, packages=('mmengine', 'onnxruntime')):
        print(line)
    print(f'eval forward, {args.warmup} warm-up runs, median of {args.repeat} interleaved runs, '
          'times in ms; GFLOPs: multiply-adds of convolutions, DimConv and linear layers at '
          'batch 1 (paper convention)')
    print()
    if args.segmentation:
        rows = run_dense(args, 'segmentation', args.seg_size)
    elif args.detection:
        rows = run_dense(args, 'detection', args.det_size)
    else:
        rows = run_classifiers(args)
    write_json(rows, args.json)


if __name__ == '__main__':
    main()
