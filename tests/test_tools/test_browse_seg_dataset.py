"""tools/analysis_tools/browse_seg_dataset.py draws the shapes segmentation set
with mmseg's SegLocalVisualizer, where mmseg's own browse_dataset.py fails."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

pytest.importorskip('mmseg')

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'dicenet_seg', 'dicenet-s0.5_1xb16-20e_shapes-64x64.py')
LAYOUT_ERROR = 'Layout of the output array img is incompatible with cv::Mat'


def load_tool(relative_path):
    path = osp.join(REPO, 'tools', relative_path)
    spec = importlib.util.spec_from_file_location(osp.splitext(osp.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('shapes_seg'))
    load_tool('dataset_converters/generate_shapes.py').main(
        ['--task', 'segmentation', '--out', root, '--num-images', '8', '--image-size', '64'])
    return root


def shapes_sample(data_root):
    from mmengine.config import Config
    from mmseg.registry import DATASETS
    from mmseg.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(CONFIG)
    cfg.train_dataloader.dataset.data_root = data_root
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    return dataset.metainfo, dataset[0]


def test_visualizer_needs_a_contiguous_image(data_root, tmp_path):
    cv2 = pytest.importorskip('cv2')
    from mmseg.visualization import SegLocalVisualizer
    browse = load_tool('analysis_tools/browse_seg_dataset.py')
    metainfo, item = shapes_sample(data_root)
    visualizer = SegLocalVisualizer(name='test_browse_seg_dataset')
    visualizer.dataset_meta = metainfo
    draw = dict(data_sample=item['data_samples'].numpy(), draw_gt=True, draw_pred=False)

    # the image mmseg 1.2.2's browse_dataset.py passes: a strided view of the input
    strided = item['inputs'].permute(1, 2, 0).numpy()[..., [2, 1, 0]]
    with pytest.raises(cv2.error, match=LAYOUT_ERROR):
        visualizer.add_datasample('strided', strided, **draw)

    image = browse.sample_image(item['inputs'])
    np.testing.assert_array_equal(image, strided)
    out_file = str(tmp_path / 'drawn.png')
    visualizer.add_datasample('contiguous', image, out_file=out_file, **draw)
    assert np.asarray(Image.open(out_file)).shape == image.shape


def test_browse_seg_dataset_draws_the_shapes_set(data_root, tmp_path):
    out_dir = tmp_path / 'vis'
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'analysis_tools', 'browse_seg_dataset.py'),
         CONFIG, '--output-dir', str(out_dir), '--max-samples', '2',
         '--cfg-options', f'train_dataloader.dataset.data_root={data_root}'],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    drawn = sorted(os.listdir(out_dir))
    assert len(drawn) == 2
    for name in drawn:
        image = np.asarray(Image.open(out_dir / name))
        assert image.shape == (64, 64, 3) and image.std() > 0
