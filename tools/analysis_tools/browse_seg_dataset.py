"""Draw the ground truth of an mmseg config's training set, one image per sample.

mmseg 1.2.2's own ``tools/analysis_tools/browse_dataset.py`` hands its visualizer
an HxWx3 view of the CHW input tensor; ``SegLocalVisualizer`` then draws the class
labels with ``cv2.rectangle`` into a ``np.zeros_like`` copy of that view, which
keeps its strides, and every OpenCV release (4.x and 5.x) refuses it: "Layout of
the output array img is incompatible with cv::Mat" (open-mmlab/mmsegmentation
issue 3405). This tool passes a C-contiguous image instead.

Example::

    python tools/analysis_tools/browse_seg_dataset.py \
        configs/dicenet_seg/dicenet-s0.5_1xb16-20e_shapes-64x64.py --output-dir vis
"""
import argparse
import os.path as osp

import numpy as np
from mmengine.config import Config, DictAction
from mmengine.utils import ProgressBar


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Draw the ground truth of an mmseg config's "
                                     'training set')
    parser.add_argument('config', help='mmseg config file')
    parser.add_argument('--output-dir', required=True,
                        help='folder the drawn images are written to (one per sample)')
    parser.add_argument('--max-samples', type=int, default=None,
                        help='draw only the first N samples (default: all)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    args = parser.parse_args(argv)
    if args.max_samples is not None and args.max_samples < 1:
        parser.error(f'--max-samples must be a positive int, got {args.max_samples}')
    return args


def sample_image(inputs):
    """The (3, H, W) BGR input tensor as a C-contiguous (H, W, 3) RGB uint8 array."""
    return np.ascontiguousarray(inputs.permute(1, 2, 0).numpy()[..., ::-1])


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    from mmseg.registry import DATASETS, VISUALIZERS
    from mmseg.utils import register_all_modules
    register_all_modules()

    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    visualizer = VISUALIZERS.build(cfg.visualizer)
    visualizer.dataset_meta = dataset.metainfo
    count = len(dataset) if args.max_samples is None else min(args.max_samples, len(dataset))
    progress_bar = ProgressBar(count)
    for index in range(count):
        item = dataset[index]
        name = osp.basename(item['data_samples'].img_path)
        visualizer.add_datasample(name, sample_image(item['inputs']),
                                  data_sample=item['data_samples'].numpy(), draw_gt=True,
                                  draw_pred=False, show=False,
                                  out_file=osp.join(args.output_dir, name))
        progress_bar.update()


if __name__ == '__main__':
    main()
