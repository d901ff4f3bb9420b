"""Train ImageNet classification configs side by side on the synthetic shapes set (CPU).

Each config's model (backbone, neck, head) is trained with the recipe of
configs/dicenet/dicenet-s0.5_1xb32_shapes-64px.py (data, pipelines, AdamW,
schedule, runtime) for the same number of epochs and seed, one tools/train.py
subprocess per model, and a markdown table of parameters, FLOPs at 64x64,
final val top-1 and training time is printed (and written with --out). This is
evidence that every variant trains, not a reproduction of ImageNet numbers.

Example::

    python tools/analysis_tools/shapes_comparison.py \
        configs/dicenet/dicenet-s0.5_8xb64_in1k.py configs/dicenet/dicenet-s1.0_8xb64_in1k.py \
        --epochs 6 --out work_dirs/shapes_comparison/table.md
"""
import argparse
import copy
import inspect
import json
import os
import os.path as osp
import platform
import shlex
import subprocess
import sys
import time
from glob import glob

import torch

import mmdice
from mmdice.apis import TensorModeWrapper, build_model_from_config
from mmdice.models.utils import count_complexity
from mmdice.testing.shapes import generate_shapes_classification
from mmdice.utils import TOOL_ERRORS, check_output_file, load_config, report_error

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RECIPE = osp.join(REPO_ROOT, 'configs', 'dicenet', 'dicenet-s0.5_1xb32_shapes-64px.py')
TRAIN_TOOL = osp.join(REPO_ROOT, 'tools', 'train.py')
CLASSIFIERS = ('ImageClassifier', 'mmpretrain.ImageClassifier')
#: Backbone arguments shown as its form.
FORM_ARGUMENTS = ('spatial', 'fusion', 'first_fusion')
#: Head settings taken from the recipe: shapes classes, top-1, its loss and small last-layer init.
RECIPE_HEAD_KEYS = ('num_classes', 'topk', 'loss', 'init_cfg')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train ImageNet classification configs side by side on the shapes set')
    parser.add_argument('configs', nargs='+', metavar='CONFIG',
                        help='mmpretrain ImageClassifier configs (ImageNet)')
    parser.add_argument('--epochs', type=int, default=6, help='training epochs of every model')
    parser.add_argument('--num-images', type=int, default=2400,
                        help='images generated (3/4 train, 1/4 val) when --data-root is missing')
    parser.add_argument('--data-root', default='data/shapes/classification',
                        help='shapes classification set; generated if it does not exist')
    parser.add_argument('--work-dir', default='work_dirs/shapes_comparison',
                        help='one work dir per config (named after it) under this folder')
    parser.add_argument('--out', help='also write the markdown table to this file')
    parser.add_argument('--seed', type=int, default=0, help='seed of the data and every run')
    return parser.parse_args(argv)


def _backbone_arguments(backbone_type):
    """The ``__init__`` parameters (name -> inspect.Parameter) of a registered backbone."""
    from mmpretrain.registry import MODELS

    import mmdice.models  # noqa: F401  registers the mmdice.* classes
    backbone_class = MODELS.get(backbone_type)
    if backbone_class is None:
        raise ValueError(f'unknown backbone type {backbone_type!r}')
    return inspect.signature(backbone_class).parameters


def _schedule(schedulers, recipe_epochs, epochs):
    """The recipe's ``param_scheduler`` list for ``epochs`` epochs: a scheduler
    ending at the recipe's last epoch ends at ``epochs`` (a cosine's ``T_max``
    follows), later ends are clipped, and one beginning at ``epochs`` or
    later is dropped."""
    adapted = []
    for scheduler in copy.deepcopy(schedulers):
        if scheduler['begin'] >= epochs:
            continue
        end = epochs if scheduler['end'] == recipe_epochs else min(scheduler['end'], epochs)
        if 'T_max' in scheduler and end != scheduler['end']:
            scheduler['T_max'] = end - scheduler['begin']
        scheduler['end'] = end
        adapted.append(scheduler)
    return adapted


def shapes_config(cfg, recipe, epochs, data_root, seed):
    """The shapes version of an ImageNet classification config.

    Args:
        cfg (mmengine.Config): an mmpretrain ``ImageClassifier`` config.
        recipe (mmengine.Config): the shapes recipe (:data:`RECIPE`).
        epochs (int): training epochs (>= 1).
        data_root (str): the shapes classification set (class folders).
        seed (int): ``randomness.seed``.

    Returns:
        mmengine.Config: the recipe with ``cfg``'s backbone (``input_size``
        the recipe's ``image_size`` when the backbone takes one), neck and
        head (num_classes, topk, loss and init_cfg of the recipe's head).

    Raises:
        ValueError: ``cfg`` is not an mmpretrain ImageClassifier config.
    """
    model = cfg.get('model') or {}
    scope = cfg.get('default_scope')
    if scope != 'mmpretrain' or model.get('type') not in CLASSIFIERS:
        raise ValueError(f'not an mmpretrain ImageClassifier config (default_scope {scope!r}, '
                         f"model type {model.get('type')!r})")
    shapes = copy.deepcopy(recipe)
    backbone = copy.deepcopy(model['backbone'])
    if 'input_size' in _backbone_arguments(backbone['type']):
        backbone['input_size'] = recipe.image_size
    head = copy.deepcopy(model['head'])
    for key in RECIPE_HEAD_KEYS:  # assigned: ConfigDict.update would merge nested dicts
        head[key] = copy.deepcopy(recipe.model.head[key])
    shapes.model['backbone'] = backbone
    shapes.model['neck'] = copy.deepcopy(model.get('neck'))
    shapes.model['head'] = head
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        shapes[loader].dataset.data_root = data_root
    shapes.param_scheduler = _schedule(recipe.param_scheduler, recipe.train_cfg.max_epochs,
                                       epochs)
    shapes.train_cfg.max_epochs = epochs
    shapes.randomness.seed = seed
    return shapes


def backbone_form(cfg):
    """``spatial / fusion / first_fusion`` of the config's backbone: the config's
    values, else the backbone's defaults, '-' for an argument it does not have."""
    backbone = cfg.model.backbone
    arguments = _backbone_arguments(backbone.type)
    return ' / '.join(
        str(backbone.get(key, arguments[key].default if key in arguments else '-'))
        for key in FORM_ARGUMENTS)


def complexity(cfg):
    """Parameters and paper-convention FLOPs (multiply-adds) of ``cfg.model`` on one
    3x``image_size``x``image_size`` image, in tensor mode."""
    model = TensorModeWrapper(build_model_from_config(cfg)).eval()
    with torch.no_grad():
        counts = count_complexity(model, torch.randn(1, 3, cfg.image_size, cfg.image_size))
    return counts['params'], counts['paper_flops']


def train(config_file, work_dir):
    """Train with tools/train.py (its output in ``work_dir``/train.log).

    Returns:
        tuple: final val top-1 (%), wall time of the run (s).
    """
    log_file = osp.join(work_dir, 'train.log')
    env = dict(os.environ)
    package_root = osp.dirname(osp.dirname(osp.abspath(mmdice.__file__)))
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [package_root, env.get('PYTHONPATH')]))
    start = time.perf_counter()
    with open(log_file, 'w', encoding='utf-8') as log:
        returncode = subprocess.call(
            [sys.executable, TRAIN_TOOL, config_file, '--work-dir', work_dir],
            stdout=log, stderr=subprocess.STDOUT, env=env)
    seconds = time.perf_counter() - start
    if returncode != 0:
        raise RuntimeError(f'training {config_file} failed (exit status {returncode}), '
                           f'see {log_file}')
    scalars = sorted(glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    top1 = None
    with open(scalars[-1], encoding='utf-8') as f:
        for line in f:
            top1 = json.loads(line).get('accuracy/top1', top1)
    if top1 is None:
        raise RuntimeError(f'no val accuracy/top1 in {scalars[-1]}')
    return top1, seconds


def count_images(data_root):
    """``(train, val)`` image counts of a class-folder data set."""
    return tuple(len(glob(osp.join(data_root, split, '*', '*'))) for split in ('train', 'val'))


def markdown_table(rows, args, images, link_dir):
    """The header lines and table of the comparison, as markdown text.

    Args:
        rows (list[dict]): per config ``config`` (path), ``form``, ``params``
            (count), ``flops`` (multiply-adds at 64x64), ``top1`` (%), ``seconds``.
        args (argparse.Namespace): the command's arguments.
        images (tuple): train and val image counts.
        link_dir (str): folder the config links are relative to.
    """
    command = 'python tools/analysis_tools/shapes_comparison.py ' + shlex.join(args.argv)
    cpu = platform.processor() or platform.machine()
    epochs = f"{args.epochs} epoch{'s' if args.epochs != 1 else ''}"
    lines = [
        f'`{command}`: {epochs} on {images[0]} train / {images[1]} val shapes images '
        f'(64x64, 3 classes), seed {args.seed}, torch {torch.__version__}, CPU {cpu} '
        f'({os.cpu_count()} cores).',
        '',
        'This is evidence that every variant trains, not a reproduction of the ImageNet '
        'numbers: each model is trained briefly with one small-data recipe '
        '(configs/dicenet/dicenet-s0.5_1xb32_shapes-64px.py). FLOPs are multiply-adds of '
        'convolutions, DimConv and linear layers (the paper\'s convention) at 64x64; the '
        'time is the wall time of tools/train.py, start-up and validation after every epoch '
        'included.',
        '',
        f'| config | backbone (spatial / fusion / first fusion) | params (M) | MFLOPs (64x64) '
        f'| top-1 (%) after {epochs} | train time (s) |',
        '| --- | --- | ---: | ---: | ---: | ---: |',
    ]
    for row in rows:
        name = osp.splitext(osp.basename(row['config']))[0]
        link = osp.relpath(row['config'], link_dir).replace(os.sep, '/')
        lines.append(f"| [{name}]({link}) | {row['form']} | {row['params'] / 1e6:.3f} "
                     f"| {row['flops'] / 1e6:.2f} | {row['top1']:.1f} | {row['seconds']:.0f} |")
    return '\n'.join(lines) + '\n'


def prepare(args):
    """Check the inputs, derive each shapes config and count its model, generate
    the data set if missing, then write each config into its work dir.
    Returns the rows without results; nothing is written on a bad input."""
    if args.epochs < 1:
        raise ValueError(f'--epochs must be at least 1, got {args.epochs}')
    if args.out:
        check_output_file(args.out, 'table')
    recipe = load_config(RECIPE)
    data_root = osp.abspath(args.data_root)
    names = [osp.splitext(osp.basename(path))[0] for path in args.configs]
    if len(set(names)) != len(names):
        raise ValueError(f'two configs share a name (their work dirs would collide): {names}')
    rows = []
    for path, name in zip(args.configs, names):
        imagenet = load_config(path)
        try:
            cfg = shapes_config(imagenet, recipe, args.epochs, data_root, args.seed)
            params, flops = complexity(cfg)
        except (ValueError, KeyError, RuntimeError) as error:
            raise ValueError(f'{path}: {error}') from error
        rows.append(dict(config=path, cfg=cfg, form=backbone_form(cfg), params=params,
                         flops=flops, work_dir=osp.abspath(osp.join(args.work_dir, name))))
    if not osp.exists(data_root):
        generate_shapes_classification(data_root, num_images=args.num_images,
                                       image_size=recipe.image_size, seed=args.seed)
    for row, name in zip(rows, names):
        os.makedirs(row['work_dir'], exist_ok=True)
        row['config_file'] = osp.join(row['work_dir'], f'{name}_shapes-64px.py')
        row.pop('cfg').dump(row['config_file'])
    return rows


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    args.argv = argv
    try:
        rows = prepare(args)
        for index, row in enumerate(rows, 1):
            row['top1'], row['seconds'] = train(row['config_file'], row['work_dir'])
            print(f"[{index}/{len(rows)}] {row['config']}: top-1 {row['top1']:.1f} %, "
                  f"{row['seconds']:.0f} s", flush=True)
    except (*TOOL_ERRORS, RuntimeError) as error:
        return report_error(error)
    link_dir = osp.dirname(osp.abspath(args.out)) if args.out else os.getcwd()
    table = markdown_table(rows, args, count_images(args.data_root), link_dir)
    print(table)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w', encoding='utf-8') as f:
            f.write(table)
    return 0


if __name__ == '__main__':
    sys.exit(main())
