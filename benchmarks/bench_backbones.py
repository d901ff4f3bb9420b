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
"""
import argparse
import copy
import logging
import os
import os.path as osp
import platform
import statistics
import sys
import tempfile
import time

import torch
from torch import nn

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from bench_dim_conv import cpu_model, reuse_large_allocations  # noqa: E402

DICE_SCALES = ('1.0', '2.0', '2.4')
TORCHVISION_MODELS = ('shufflenet_v2_x1_5', 'shufflenet_v2_x1_0', 'mobilenet_v2',
                      'mobilenet_v3_large')
MODELS = tuple(f'dicenet-s{s}{form}' for s in DICE_SCALES
               for form in ('', '-deploy')) + TORCHVISION_MODELS
FORMS = ('eager', 'eager-cl', 'compile', 'onnx')
BASELINE = 'shufflenet_v2_x1_5'
SEG_CONFIG = osp.join(REPO, 'configs', 'dicenet_seg',
                      'dicenet-s1.0_1xb32-100e_voc12aug-384x384.py')
DET_CONFIG = osp.join(REPO, 'configs', 'ssd', 'dicenet_ssd300_voc0712.py')


class TensorClassifier(nn.Module):
    """An mmpretrain ImageClassifier as a tensor -> logits module."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, x):
        return self.classifier(x, mode='tensor')


class TensorSegmentor(nn.Module):
    """An mmseg EncoderDecoder as a tensor -> logits (at input size) module."""

    def __init__(self, segmentor: nn.Module):
        super().__init__()
        self.segmentor = segmentor

    def forward(self, x):
        return self.segmentor.encode_decode(x, [dict(img_shape=x.shape[2:])])


def build_dicenet(scale: str, deploy: bool) -> nn.Module:
    from mmengine.config import Config
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

    import mmdice.models  # noqa: F401
    from mmdice.models import switch_to_deploy
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'dicenet', f'dicenet-s{scale}_8xb64_in1k.py'))
    model = MMPRETRAIN_MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    if deploy:
        switch_to_deploy(model)
    return TensorClassifier(model)


class TensorDetector(nn.Module):
    """An mmdet detector as a tensor -> (class scores, box deltas) per level module."""

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.detector = detector

    def forward(self, x):
        return self.detector(x, mode='tensor')


#: Dense-prediction models timed training form against deploy form: config, scope,
#: wrapper, row label.
DENSE_TASKS = {
    'segmentation': (SEG_CONFIG, 'mmseg', TensorSegmentor, 'dicenet-s1.0 voc seg'),
    'detection': (DET_CONFIG, 'mmdet', TensorDetector, 'dicenet-s2.4 ssd300 voc'),
}


def build_dense(task: str, deploy: bool) -> nn.Module:
    """The segmentor or SSD detector of DENSE_TASKS[task], randomly initialised, eval mode."""
    from mmengine.config import Config
    from mmengine.registry import MODELS as ROOT_MODELS
    from mmengine.registry import DefaultScope

    import mmdice.models  # noqa: F401
    from mmdice.models import switch_to_deploy
    config, scope, wrapper, _ = DENSE_TASKS[task]
    __import__(f'{scope}.models')  # registers the scope's models
    model_cfg = Config.fromfile(config).model
    model_cfg.backbone.pop('init_cfg', None)  # random weights: no pretrained checkpoint
    with DefaultScope.overwrite_default_scope(scope):
        model = ROOT_MODELS.build(model_cfg)
    model.init_weights()
    model.eval()
    if deploy:
        switch_to_deploy(model)
    return wrapper(model)


def build_model(name: str) -> nn.Module:
    if name.startswith('dicenet-s'):
        scale = name[len('dicenet-s'):].replace('-deploy', '')
        return build_dicenet(scale, name.endswith('-deploy'))
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
        from mmdice.utils.onnx_export import export_onnx, onnx_session
        path = osp.join(tempfile.mkdtemp(prefix='bench_onnx_'), 'model.onnx')
        export_onnx(model, example, path)
        self.session = onnx_session(path, threads)
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x):
        return self.session.run(None, {self.input_name: x.numpy()})


def make_runner(model: nn.Module, form: str, example: torch.Tensor, threads: int):
    """A callable x -> outputs for ``form``, and the input it takes."""
    if form == 'eager':
        return model, example
    if form == 'eager-cl':
        return (copy.deepcopy(model).to(memory_format=torch.channels_last),
                example.contiguous(memory_format=torch.channels_last))
    if form == 'compile':
        return torch.compile(model), example
    if form == 'onnx':
        return OnnxRunner(model, example, threads), example
    raise ValueError(f'unknown form {form!r}')


def time_cases(cases, warmup: int, repeat: int):
    """Median, min and max ms of each case; the cases run in turn in every repeat."""
    with torch.inference_mode():
        for runner, x in cases.values():
            for _ in range(warmup):
                runner(x)
        samples = {key: [] for key in cases}
        for _ in range(repeat):
            for key, (runner, x) in cases.items():
                start = time.perf_counter()
                runner(x)
                samples[key].append((time.perf_counter() - start) * 1e3)
    return {key: (statistics.median(v), min(v), max(v)) for key, v in samples.items()}


def machine_lines(threads: int, malloc: str):
    import mmengine
    lines = [f'CPU: {cpu_model()} ({os.cpu_count()} logical cores), torch threads: {threads}',
             f'torch {torch.__version__}, Python {platform.python_version()}, mmengine '
             f'{mmengine.__version__}']
    try:
        import onnxruntime
        lines.append(f'onnxruntime {onnxruntime.__version__}')
    except ImportError:
        lines.append('onnxruntime not installed')
    lines.append(f'malloc: {malloc}')
    lines.append(f'load average at start: {" ".join(f"{v:.2f}" for v in os.getloadavg())}')
    return lines


def print_table(rows, header, markdown):
    if markdown:
        print('| ' + ' | '.join(header) + ' |')
        print('|' + '---|' * len(header))
        for row in rows:
            print('| ' + ' | '.join(row) + ' |')
    else:
        widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
        for row in [header] + rows:
            print('  '.join(str(cell).rjust(width) for cell, width in zip(row, widths)))


def print_profiles(models, example, count):
    """The ``count`` ops with the most self CPU time in 3 eager forwards of each model."""
    for name, model in models.items():
        with torch.no_grad():
            model(example)
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                for _ in range(3):
                    model(example)
        print(f'profile {name}, batch {example.shape[0]}, 3 forwards:')
        print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=count))


def run_classifiers(args):
    models = {name: build_model(name) for name in args.models}
    if args.profile:
        for batch in args.batch:
            print_profiles(models, torch.randn(batch, 3, args.size, args.size), args.profile)
        return
    info = {name: complexity(name, model, args.size) for name, model in models.items()} \
        if args.complexity else {}
    header = ['model', 'form', 'batch', 'median ms', 'spread ms', 'images/s',
              f'x {BASELINE}', 'GFLOPs', 'M params']
    for batch in args.batch:
        example = torch.randn(batch, 3, args.size, args.size)
        cases = {}
        for name, model in models.items():
            for form in args.forms:
                cases[(name, form)] = make_runner(model, form, example, args.threads)
        times = time_cases(cases, args.warmup, args.repeat)
        rows = []
        for (name, form), (median, low, high) in times.items():
            base = times.get((BASELINE, form))
            ratio = f'{median / base[0]:.2f}' if base else '-'
            flops, params = info.get(name, (float('nan'), float('nan')))
            rows.append([name, form, str(batch), f'{median:.1f}', f'{low:.1f}-{high:.1f}',
                         f'{batch * 1e3 / median:.1f}', ratio, f'{flops:.3f}', f'{params:.2f}'])
        print_table(rows, header, args.markdown)
        print()


def run_dense(args, task: str, size: int):
    """Training against deploy form of the segmentor or detector at ``size``."""
    forms = [form for form in args.forms if form in ('eager', 'eager-cl')] or ['eager']
    models = {'training': build_dense(task, False), 'deploy': build_dense(task, True)}
    label = f'{DENSE_TASKS[task][3]} {size}x{size}'
    if args.profile:
        for batch in args.batch:
            print_profiles({f'{label} {name}': model for name, model in models.items()},
                           torch.randn(batch, 3, size, size), args.profile)
        return
    header = ['model', 'form', 'batch', 'median ms', 'spread ms', 'images/s', 'x training']
    for batch in args.batch:
        example = torch.randn(batch, 3, size, size)
        cases = {(name, form): make_runner(model, form, example, args.threads)
                 for name, model in models.items() for form in forms}
        times = time_cases(cases, args.warmup, args.repeat)
        rows = []
        for (name, form), (median, low, high) in times.items():
            ratio = times[('training', form)][0] / median
            rows.append([f'{label} {name}', form, str(batch), f'{median:.1f}',
                         f'{low:.1f}-{high:.1f}', f'{batch * 1e3 / median:.1f}',
                         f'{ratio:.2f} faster'])
        print_table(rows, header, args.markdown)
        print()


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=MODELS)
    parser.add_argument('--forms', nargs='+', default=list(FORMS), choices=FORMS)
    parser.add_argument('--batch', nargs='+', type=int, default=[1, 32])
    parser.add_argument('--size', type=int, default=224, help='input side (classifiers)')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeat', type=int, default=7)
    parser.add_argument('--no-complexity', dest='complexity', action='store_false',
                        help='skip counting FLOPs and parameters')
    parser.add_argument('--segmentation', action='store_true',
                        help='time the VOC segmentor (training vs deploy) instead')
    parser.add_argument('--seg-size', type=int, default=384)
    parser.add_argument('--detection', action='store_true',
                        help='time the SSD300 VOC detector (training vs deploy) instead')
    parser.add_argument('--det-size', type=int, default=300)
    parser.add_argument('--system-malloc', action='store_true',
                        help="keep glibc's own malloc settings")
    parser.add_argument('--profile', type=int, default=0, metavar='N',
                        help='print the N ops with the most self CPU time of 3 eager forwards '
                        'of each model (classifiers, or the dense task) instead of timing')
    parser.add_argument('--markdown', action='store_true')
    args = parser.parse_args()
    for name in ('batch', 'size', 'threads', 'repeat', 'seg_size', 'det_size'):
        values = getattr(args, name)
        if any(v < 1 for v in (values if isinstance(values, list) else [values])):
            parser.error(f'--{name.replace("_", "-")} must be positive')
    if args.warmup < 0 or args.profile < 0:
        parser.error('--warmup and --profile must be >= 0')
    return args


def main():
    args = parse_args()
    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().setLevel(logging.WARNING)  # no init_weights report
    malloc = 'system default' if args.system_malloc else reuse_large_allocations()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for line in machine_lines(args.threads, malloc):
        print(line)
    print(f'eval forward, {args.warmup} warm-up runs, median of {args.repeat} interleaved runs, '
          'times in ms; GFLOPs: multiply-adds of convolutions, DimConv and linear layers at '
          'batch 1 (paper convention)')
    print()
    if args.segmentation:
        run_dense(args, 'segmentation', args.seg_size)
    elif args.detection:
        run_dense(args, 'detection', args.det_size)
    else:
        run_classifiers(args)


if __name__ == '__main__':
    main()
