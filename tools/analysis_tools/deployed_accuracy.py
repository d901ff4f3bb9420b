"""Accuracy of every exported form against PyTorch, in one table: bbox mAP and
mAP@0.5 of the ``make demo`` DiCENet-SSD300 (s=0.5) and mIoU of the shapes
segmentor (s=0.5, 64 x 64) on their held-out shapes splits, evaluated by the
configs' own evaluators for

* PyTorch (``tools/test.py``'s Runner with the checkpoint),
* the f32 end-to-end ONNX in onnxruntime (``pytorch2onnx.py --deploy``),
* the f32 OpenVINO IR with the mmdice extension (``pytorch2openvino.py``),

each export run by ``mmdice.apis.DeployedModel`` in the same Runner
(``tools/deployment/test_deployed.py``). The datasets are generated when
missing and the models trained with ``tools/train.py`` unless
``--ssd-checkpoint`` / ``--seg-checkpoint`` give them. Targets (issue 24):
mAP and mAP@0.5 within 0.005 of PyTorch, mIoU within 0.1 point. Example::

    python tools/analysis_tools/deployed_accuracy.py --work-dir work_dirs/deployed_accuracy

(int8: ``tools/deployment/quantize.py`` exports the raw form only, so it has
no column here.)
"""
import argparse
import copy
import os
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SSD_CONFIG = osp.join(REPO, 'configs', 'ssd', 'dicenet-s0.5_ssd300_shapes.py')
SEG_CONFIG = osp.join(REPO, 'configs', 'dicenet_seg', 'dicenet-s0.5_1xb16-20e_shapes-64x64.py')

#: (metric key, printed name, largest accepted difference from PyTorch).
DET_METRICS = (('coco/bbox_mAP', 'bbox mAP', 0.005), ('coco/bbox_mAP_50', 'bbox mAP@0.5', 0.005))
SEG_METRICS = (('mIoU', 'mIoU', 0.1), )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/deployed_accuracy',
                        help='checkpoints, exports and logs go here')
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
    parser.add_argument('--backends', nargs='+', default=['onnxruntime', 'openvino'],
                        choices=['onnxruntime', 'openvino'])
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


def train(config, work_dir, options):
    """Train with tools/train.py; the last checkpoint's path."""
    command = [sys.executable, osp.join(REPO, 'tools', 'train.py'), config, '--work-dir',
               work_dir, '--cfg-options', *options]
    subprocess.run(command, check=True, env=dict(os.environ, PYTHONPATH=REPO))
    with open(osp.join(work_dir, 'last_checkpoint'), encoding='utf-8') as file:
        return file.read().strip()


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


def export(config, checkpoint, path, shape, backend):
    """Export the end-to-end deploy form with pytorch2onnx.py / pytorch2openvino.py."""
    tool = 'pytorch2onnx.py' if backend == 'onnxruntime' else 'pytorch2openvino.py'
    command = [sys.executable, osp.join(REPO, 'tools', 'deployment', tool), config, checkpoint,
               '--output-file', path, '--shape', '1', '3', *map(str, shape)]
    if backend == 'onnxruntime':
        command.append('--deploy')
    if subprocess.run(command, env=dict(os.environ, PYTHONPATH=REPO)).returncode != 0:
        raise RuntimeError(f'exporting {config} to {path} failed (see above)')


def measure(task, config, checkpoint, root, shape, args):
    """Rows (form, {metric: value}) of PyTorch and each backend."""
    from mmdice.utils import load_config
    cfg = load_config(config)
    cfg.merge_from_dict(dict(option.split('=', 1) for option in data_options(task, root)))
    work_dir = osp.join(args.work_dir, task)
    rows = [('PyTorch', evaluate(cfg, work_dir, 'pytorch', checkpoint=checkpoint))]
    for backend in args.backends:
        path = osp.join(work_dir, 'model.onnx' if backend == 'onnxruntime' else 'model.xml')
        export(config, checkpoint, path, shape, backend)
        model = dict(type='mmdice.DeployedModel', path=path, config=config, backend=backend)
        form = 'onnxruntime f32' if backend == 'onnxruntime' else 'OpenVINO f32 (extension)'
        rows.append((form, evaluate(cfg, work_dir, backend, model=model)))
    return rows


def table(model_name, rows, metrics):
    """Markdown lines: one row per form, each metric and its difference from PyTorch."""
    header = ['model', 'form'] + [name for _, name, _ in metrics] + [
        f'{name} - PyTorch' for _, name, _ in metrics] + ['within target']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    reference = rows[0][1]
    for form, values in rows:
        deltas = [values[key] - reference[key] for key, _, _ in metrics]
        met = all(abs(delta) <= limit for delta, (_, _, limit) in zip(deltas, metrics))
        cells = [model_name, form] + [f'{values[key]:.4f}' for key, _, _ in metrics] + [
            f'{delta:+.4f}' for delta in deltas] + ['-' if form == 'PyTorch' else
                                                    ('yes' if met else 'no')]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return lines


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    det_root = osp.join(args.data_root, 'detection')
    seg_root = osp.join(args.data_root, 'segmentation')
    prepare_data('detection', det_root, args.det_images)
    prepare_data('segmentation', seg_root, args.seg_images)
    ssd = args.ssd_checkpoint or train(SSD_CONFIG, osp.join(args.work_dir, 'train_ssd'),
                                       data_options('detection', det_root) + args.train_options)
    seg = args.seg_checkpoint or train(SEG_CONFIG, osp.join(args.work_dir, 'train_seg'),
                                       data_options('segmentation', seg_root) +
                                       args.train_options)
    lines = table('DiCENet-SSD300 s=0.5 (make demo)',
                  measure('detection', SSD_CONFIG, ssd, det_root, (300, 300), args),
                  DET_METRICS)
    seg_rows = measure('segmentation', SEG_CONFIG, seg, seg_root, (64, 64), args)
    lines += [''] + table('DiCENet-seg s=0.5 shapes 64x64', seg_rows, SEG_METRICS)
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
