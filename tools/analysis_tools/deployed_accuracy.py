"""Accuracy of every exported form against PyTorch, in one table: bbox mAP and
mAP@0.5 of the ``make demo`` DiCENet-SSD300 (s=0.5) and mIoU of the shapes
segmentor (s=0.5, 64 x 64) on their held-out shapes splits, evaluated by the
configs' own evaluators for

* PyTorch (the checkpoint in the config's test loop, as ``tools/test.py``),
* the f32 end-to-end ONNX in onnxruntime (``pytorch2onnx.py --deploy``),
* the f32 OpenVINO IR with the mmdice extension (``pytorch2openvino.py``),
* the int8 OpenVINO IR (``quantize.py``, end to end: the network int8, the
  post-processing float), calibrated on images of the train split (at most
  ``--calib-num``, the tool's order), disjoint from the held-out split,

each export run by ``mmdice.apis.DeployedModel`` in the same test loop (as
``tools/deployment/test_deployed.py``). The datasets are generated when
missing and the models trained with ``tools/train.py`` unless
``--ssd-checkpoint`` / ``--seg-checkpoint`` give them; a training whose
last checkpoint in the work directory is its final epoch is reused, an
unfinished one resumed. Targets: f32 forms (issue 24) mAP and mAP@0.5
within 0.005 of PyTorch, mIoU within 0.1 point; int8 (issue 25) mAP@0.5
within 0.01, mIoU within 1.0 point. Example::

    python tools/analysis_tools/deployed_accuracy.py --work-dir work_dirs/deployed_accuracy
"""
import argparse
import copy
import json
import os
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SSD_CONFIG = osp.join(REPO, 'configs', 'ssd', 'dicenet-s0.5_ssd300_shapes.py')
SEG_CONFIG = osp.join(REPO, 'configs', 'dicenet_seg', 'dicenet-s0.5_1xb16-20e_shapes-64x64.py')

#: Measured models: task -> (config, input (H, W), table name).
TASKS = {
    'detection': (SSD_CONFIG, (300, 300), 'DiCENet-SSD300 s=0.5 (make demo)'),
    'segmentation': (SEG_CONFIG, (64, 64), 'DiCENet-seg s=0.5 shapes 64x64'),
}
#: Exported forms: (name in --forms, row name).
FORMS = (('onnxruntime', 'onnxruntime f32'), ('openvino', 'OpenVINO f32 (extension)'),
         ('int8', 'OpenVINO int8'))
#: (metric key, printed name) of each task.
DET_METRICS = (('coco/bbox_mAP', 'bbox mAP'), ('coco/bbox_mAP_50', 'bbox mAP@0.5'))
SEG_METRICS = (('mIoU', 'mIoU'), )
#: Largest accepted difference from PyTorch of each metric, by form precision
#: (mIoU in points, as mmseg's IoUMetric reports it); metrics without one have no target.
TARGETS = {
    'f32': {'coco/bbox_mAP': 0.005, 'coco/bbox_mAP_50': 0.005, 'mIoU': 0.1},
    'int8': {'coco/bbox_mAP_50': 0.01, 'mIoU': 1.0},
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/deployed_accuracy',
                        help='trainings, exports and logs go here')
    parser.add_argument('--data-root', default='data/shapes',
                        help='shapes data sets: <root>/detection and <root>/segmentation '
                        '(generated when missing)')
    parser.add_argument('--det-images', type=int, default=1600,
                        help='images of the detection set (the make demo default)')
    parser.add_argument('--seg-images', type=int, default=200,
                        help='images of the segmentation set (the generator default)')
    parser.add_argument('--ssd-checkpoint', help='trained SSD (default: train it)')
    parser.add_argument('--seg-checkpoint', help='trained segmentor (default: train it)')
    parser.add_argument('--train-options', nargs='*', default=[],
                        help='extra --cfg-options of both trainings (e.g. to shorten them)')
    parser.add_argument('--tasks', nargs='+', default=list(TASKS), choices=list(TASKS),
                        help='models to measure: the SSD (detection), the segmentor')
    parser.add_argument('--forms', nargs='+', default=[name for name, _ in FORMS],
                        choices=[name for name, _ in FORMS], help='exported forms to measure')
    parser.add_argument('--calib-num', type=int, default=300,
                        help='int8: calibration images of the train split (quantize.py\'s '
                        'default)')
    return parser.parse_args(argv)


def data_options(task, root):
    """--cfg-options pointing every split of the task's config at ``root``."""
    options = [f'{split}_dataloader.dataset.data_root={root}' for split in ('train', 'val', 'test')]
    if task == 'detection':
        options += [f'{split}_evaluator.ann_file={root}/annotations/val.json'
                    for split in ('val', 'test')]
    return options


def prepare_data(task, root, num_images):
    from mmdice.testing import shapes
    marker = osp.join(root, 'annotations', 'val.json') if task == 'detection' else osp.join(
        root, 'ImageSets', 'Segmentation', 'val.txt')
    if osp.exists(marker):
        return
    if task == 'detection':
        shapes.generate_shapes_detection(root, num_images=num_images, image_size=128)
    else:
        shapes.generate_shapes_segmentation(root, num_images=num_images, image_size=64)


def train_images(task, root):
    """Paths of the images of the train split of the shapes set at ``root``."""
    if task == 'detection':
        with open(osp.join(root, 'annotations', 'train.json'), encoding='utf-8') as file:
            names = [image['file_name'] for image in json.load(file)['images']]
        return [osp.join(root, 'images', name) for name in names]
    with open(osp.join(root, 'ImageSets', 'Segmentation', 'train.txt'), encoding='utf-8') as file:
        names = file.read().split()
    return [osp.join(root, 'JPEGImages', f'{name}.jpg') for name in names]


def calibration_folder(task, root, folder):
    """``folder`` filled with links to the train split's images (quantize.py
    reads a folder); returns it."""
    os.makedirs(folder, exist_ok=True)
    for path in train_images(task, root):
        link = osp.join(folder, osp.basename(path))
        if not osp.lexists(link):
            os.symlink(osp.abspath(path), link)
    return folder


def run_tool(relative, *args):
    """Run tools/<relative> with ``args``; CalledProcessError if it fails."""
    path = os.pathsep.join(filter(None, [REPO, os.environ.get('PYTHONPATH')]))
    subprocess.run([sys.executable, osp.join(REPO, 'tools', relative), *map(str, args)],
                   check=True, env=dict(os.environ, PYTHONPATH=path))


def train(config, work_dir, options):
    """The final checkpoint of ``config`` trained by tools/train.py in
    ``work_dir``: reused when there, resumed when the run stopped early."""
    from mmdice.utils import load_config
    cfg = load_config(config)
    cfg.merge_from_dict(dict(option.split('=', 1) for option in options))
    final = osp.join(work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
    if osp.isfile(final):
        return final
    resume = ['--resume'] if osp.isfile(osp.join(work_dir, 'last_checkpoint')) else []
    run_tool('train.py', config, '--work-dir', work_dir, *resume, '--cfg-options', *options)
    return final


def evaluate(cfg, work_dir, name, checkpoint=None, model=None):
    """The metrics of the config's test loop, with ``checkpoint`` loaded into its
    model or with ``model`` (a model config) in its place."""
    from mmdice.engine.launch import build_runner
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = osp.join(work_dir, name)
    cfg.experiment_name = name
    cfg.launcher = 'none'
    cfg.resume = False
    cfg.load_from = checkpoint
    if model is not None:
        cfg.model = model
    return build_runner(cfg).test()


def export(form, config, checkpoint, path, size, calibration, calib_num):
    """Export the end-to-end deploy form ``form`` of ``checkpoint`` to ``path``
    with the deployment tool of that form; ``size``: input (H, W);
    ``calibration``: int8 calibration image folder."""
    shape = ['--shape', 1, 3, *size]
    if form == 'onnxruntime':
        run_tool('deployment/pytorch2onnx.py', config, checkpoint, '--output-file', path,
                 *shape, '--deploy')
    elif form == 'openvino':
        run_tool('deployment/pytorch2openvino.py', config, checkpoint, '--output-file', path,
                 *shape)
    else:
        run_tool('deployment/quantize.py', config, checkpoint, '--output-file', path,
                 '--shape', *size, '--calib-dir', calibration, '--calib-num', calib_num)


def measure(task, config, checkpoint, root, size, args):
    """Rows (form, {metric: value}) of PyTorch and each exported form."""
    from mmdice.utils import load_config
    cfg = load_config(config)
    cfg.merge_from_dict(dict(option.split('=', 1) for option in data_options(task, root)))
    work_dir = osp.join(args.work_dir, task)
    rows = [('PyTorch', evaluate(cfg, work_dir, 'pytorch', checkpoint=checkpoint))]
    calibration = None
    if 'int8' in args.forms:
        calibration = calibration_folder(task, root, osp.join(work_dir, 'calibration'))
    for form, row_name in FORMS:
        if form not in args.forms:
            continue
        path = osp.join(work_dir, 'model.onnx' if form == 'onnxruntime' else f'model-{form}.xml')
        export(form, config, checkpoint, path, size, calibration, args.calib_num)
        backend = 'onnxruntime' if form == 'onnxruntime' else 'openvino'
        model = dict(type='mmdice.DeployedModel', path=path, config=config, backend=backend)
        rows.append((row_name, evaluate(cfg, work_dir, form, model=model)))
    return rows


def table(model_name, rows, metrics):
    """Markdown lines: one row per form, each metric and its difference from
    PyTorch, and whether the form meets its :data:`TARGETS`."""
    header = ['model', 'form'] + [name for _, name in metrics] + [
        f'{name} - PyTorch' for _, name in metrics] + ['within target']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    reference = rows[0][1]
    for form, values in rows:
        deltas = [values[key] - reference[key] for key, _ in metrics]
        limits = TARGETS['int8' if 'int8' in form else 'f32']
        met = all(abs(delta) <= limits[key] for delta, (key, _) in zip(deltas, metrics)
                  if key in limits)
        cells = [model_name, form] + [f'{values[key]:.4f}' for key, _ in metrics] + [
            f'{delta:+.4f}' for delta in deltas] + ['-' if form == 'PyTorch' else
                                                    ('yes' if met else 'no')]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return lines


def main(argv=None):
    args = parse_args(argv)
    try:
        lines = measure_all(args)
    except subprocess.CalledProcessError as error:
        from mmdice.utils import report_error
        tool = osp.relpath(error.cmd[1], REPO)
        return report_error(f'{tool} failed with exit status {error.returncode} (its output '
                            'is above)')
    print('\n'.join(lines))
    return 0


def measure_all(args):
    """The table's lines: train or reuse both models, export and evaluate every form."""
    os.makedirs(args.work_dir, exist_ok=True)
    lines = []
    for task in args.tasks:
        config, size, name = TASKS[task]
        root = osp.join(args.data_root, task)
        prepare_data(task, root, args.det_images if task == 'detection' else args.seg_images)
        checkpoint = args.ssd_checkpoint if task == 'detection' else args.seg_checkpoint
        if checkpoint is None:
            checkpoint = train(config, osp.join(args.work_dir, f'train_{task}'),
                               data_options(task, root) + args.train_options)
        lines += [''] * bool(lines) + table(
            name, measure(task, config, checkpoint, root, size, args),
            DET_METRICS if task == 'detection' else SEG_METRICS)
    return lines


if __name__ == '__main__':
    sys.exit(main())
