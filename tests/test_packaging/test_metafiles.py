"""model-index.yml and the metafiles: what `mim search mmdice` reads.

Every config has one entry, every entry's config exists, and every converted
checkpoint names the converter command that makes it from the authors' file.
"""
import glob
import os
import os.path as osp
import re
import shlex
import subprocess
import sys

import pytest
import yaml

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
WEIGHTS = os.environ.get('MMDICE_EDGENETS_WEIGHTS',
                         osp.join(REPO, '..', 'shared', 'edgenets_weights'))
CONVERTER = 'tools/model_converters/edgenets2mmdice.py'
EDGENETS_FILE = re.compile(r'dicenet_s_(?P<scale>[\d.]+)_(?P<dataset>pascal|city)_'
                           r'(?P<width>\d+)x(?P<height>\d+)\.pth')
DATASET_IN_CONFIG = {'pascal': 'voc12aug', 'city': 'cityscapes'}


def read_yaml(path):
    with open(osp.join(REPO, path), encoding='utf-8') as f:
        return yaml.safe_load(f)


def metafile_paths():
    return read_yaml('model-index.yml')['Import']


def all_models():
    return [model for path in metafile_paths() for model in read_yaml(path)['Models']]


def converted_models():
    return [model for model in all_models() if 'Converted From' in model]


def config_files():
    paths = glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    return sorted(osp.relpath(p, REPO) for p in paths
                  if not osp.relpath(p, REPO).startswith(osp.join('configs', '_base_')))


def test_model_index_imports_every_metafile():
    on_disk = sorted(osp.relpath(p, REPO)
                     for p in glob.glob(osp.join(REPO, 'configs', '*', 'metafile.yml')))
    assert sorted(metafile_paths()) == on_disk
    assert {osp.dirname(p) for p in on_disk} == {'configs/dice_unit', 'configs/dicenet',
                                                 'configs/dicenet_seg', 'configs/ssd'}


def test_every_config_has_one_entry_and_every_entry_a_config():
    listed = [model['Config'] for model in all_models()]
    assert sorted(listed) == config_files()
    for model in all_models():
        assert model['Name'] == osp.splitext(osp.basename(model['Config']))[0]


def test_entries_belong_to_a_collection_of_their_metafile():
    for path in metafile_paths():
        metafile = read_yaml(path)
        collections = {collection['Name'] for collection in metafile['Collections']}
        for collection in metafile['Collections']:
            assert osp.isfile(osp.join(REPO, collection['README']))
        for model in metafile['Models']:
            assert model['In Collection'] in collections, model['Name']
            assert model['Config'].startswith(osp.dirname(path) + '/'), model['Name']


def test_model_index_loads_with_mims_loader():
    load = pytest.importorskip('modelindex.load_model_index').load
    index = load(osp.join(REPO, 'model-index.yml'))
    assert len(index.models) == len(config_files())
    index.build_models_with_collections()
    for model in index.models:
        assert osp.isfile(osp.join(REPO, model.config))


def test_every_converted_checkpoint_names_its_converter_command():
    models = converted_models()
    assert len(models) == 24  # the authors' released segmentation files
    for model in models:
        source = osp.basename(model['Converted From']['Weights'])
        file_parts = EDGENETS_FILE.fullmatch(source)
        assert file_parts, source
        command = shlex.split(model['Converted From']['Command'])
        assert command == ['python', CONVERTER, source, f'checkpoints/{model["Name"]}.pth']
        config_name = osp.basename(model['Config'])
        scale, dataset = file_parts['scale'], file_parts['dataset']
        assert config_name.startswith(f'dicenet-s{scale}_'), (source, config_name)
        crop = f'{DATASET_IN_CONFIG[dataset]}-{file_parts["height"]}x{file_parts["width"]}.py'
        assert config_name.endswith(crop), (source, config_name)
    assert osp.isfile(osp.join(REPO, CONVERTER))


def test_converter_command_of_the_metafile_makes_a_strictly_loading_checkpoint(tmp_path):
    model = next(m for m in converted_models()
                 if m['Name'] == 'dicenet-s1.0_1xb32-100e_voc12aug-384x384')
    _, tool, source, target = shlex.split(model['Converted From']['Command'])
    source = osp.join(WEIGHTS, source)
    if not osp.isfile(source):
        pytest.skip(f'{source} not found (set MMDICE_EDGENETS_WEIGHTS)')
    pytest.importorskip('mmseg')
    target = str(tmp_path / target)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run([sys.executable, tool, source, target], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import mmdice.models  # noqa: F401
    init_default_scope('mmseg')
    segmentor = MODELS.build(Config.fromfile(osp.join(REPO, model['Config'])).model)
    checkpoint = torch.load(target, map_location='cpu', weights_only=False)
    segmentor.load_state_dict(checkpoint['state_dict'], strict=True)
