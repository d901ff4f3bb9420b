"""configs/dice_unit: the models of DiCENet Tables 1-3, their FLOPs (exact, and within 5 %
of the paper's), and that the configs, README table and metafile are the generator's."""
import importlib.util
import re
from pathlib import Path

import pytest
import yaml

pytest.importorskip('mmpretrain')

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location(
    'generate_dice_unit_configs', REPO / 'tools' / 'misc' / 'generate_dice_unit_configs.py')
generator = importlib.util.module_from_spec(spec)
spec.loader.exec_module(generator)
ENTRIES = generator.ENTRIES


def readme_rows():
    """{config name: (params M, FLOPs ours M, FLOPs paper M)} of the README table."""
    text = (REPO / generator.README).read_text(encoding='utf-8')
    rows = {}
    for line in text.split(generator.TABLE_BEGIN)[1].split(generator.TABLE_END)[0].splitlines():
        match = re.search(r'\[([\w.-]+)\]\(\./[\w.-]+\.py\) \| [^|]+ \| ([\d.]+) \| ([\d.]+) \| '
                          r'([\d.]+) \|', line)
        if match:
            rows[match.group(1)] = tuple(float(value) for value in match.groups()[1:])
    return rows


def test_every_table_row_of_the_paper_has_a_config():
    assert len(ENTRIES) == 38 and len(generator.BY_NAME) == 38
    rows = [row for entry in ENTRIES for row in entry.rows]
    assert sum(row.startswith('Table 1') for row in rows) == 18
    table2 = [row for row in rows if row.startswith('Table 2')]
    assert len(table2) == 16  # 8 pairs x (ResNet, ShuffleNetV2)
    table3 = [row for row in rows if row.startswith('Table 3')]
    assert sorted(set(table3)) == [f'Table 3 R{i}' for i in range(1, 7)] and len(table3) == 12
    on_disk = sorted(path.name for path in (REPO / generator.CONFIG_DIR).glob('*.py'))
    assert on_disk == sorted(Path(entry.config).name for entry in ENTRIES)


def test_configs_are_the_generators():
    for path, text in generator.config_files().items():
        assert (REPO / path).read_text(encoding='utf-8') == text, (
            f'{path} differs from its ENTRIES row: run '
            '`python tools/misc/generate_dice_unit_configs.py write`')


@pytest.mark.parametrize('entry', ENTRIES, ids=lambda entry: entry.name)
def test_flops_exact_and_within_5_percent_of_the_paper(entry):
    mflops, params = generator.measure(entry)
    assert abs(mflops - entry.paper_mflops) <= generator.FLOPS_TOLERANCE * entry.paper_mflops
    readme_params, readme_mflops, paper = readme_rows()[entry.name]
    assert (round(params, 2), round(mflops, 2), paper) == (
        readme_params, readme_mflops, entry.paper_mflops)
    metafile = yaml.safe_load((REPO / generator.METAFILE).read_text(encoding='utf-8'))
    model = next(m for m in metafile['Models'] if m['Config'] == entry.config)
    assert model['Metadata']['FLOPs'] == round(mflops * 1e6)
    assert model['Metadata']['Parameters'] == round(params * 1e6)


def test_get_flops_prints_the_table_value(capsys):
    spec = importlib.util.spec_from_file_location(
        'get_flops', REPO / 'tools' / 'analysis_tools' / 'get_flops.py')
    get_flops = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(get_flops)
    entry = generator.BY_NAME['resnet_pw-dimconv-dimfuse_122m']
    get_flops.main([str(REPO / entry.config)])
    assert f'{readme_rows()[entry.name][1]:.2f}' in capsys.readouterr().out


def test_shufflenetv2_dice_rows_reuse_dicenets_scales():
    dicenet_rows = [entry for entry in ENTRIES
                    if entry.family == 'shufflenetv2' and isinstance(entry.width, float)]
    assert {entry.width for entry in dicenet_rows} == {0.75, 2.4}
    assert all((entry.spatial, entry.fusion) == ('dimconv', 'dimfuse') for entry in dicenet_rows)


def test_fit_prints_the_closest_width(capsys):
    assert generator.main(['fit', 'shufflenetv2_pw-dimconv-dimfuse_46m', '0.5', '0.75']) == 0
    out = capsys.readouterr().out
    assert 'closest: width 0.75 -> 46.83 MFLOPs (budget 46)' in out


def test_search_finds_a_width_within_5_percent():
    entry = generator.BY_NAME['mobilenet_dwise-pw_41m']
    width, mflops = generator.search_width(entry, 41, report=lambda line: None)
    assert abs(mflops - 41) <= 0.05 * 41
    assert generator.classifier_mflops(entry, width) == mflops


def test_a_budget_the_family_cannot_reach_is_an_error(capsys):
    assert generator.main(['fit', 'mobilenet_dwise-pw_41m', '--budget', '1']) == 1
    out = capsys.readouterr().out
    assert ('error: budget 1 MFLOPs is out of reach of MobileNet with DWise + Point-wise units'
            in out)
