"""benchmarks/benchmark_utils.py: options, the interleaved timing loop, tables and JSON."""
import argparse
import json

import pytest


@pytest.fixture
def utils(load_benchmark):
    return load_benchmark('benchmark_utils')


def test_time_interleaved_runs_every_case_once_per_round(utils):
    calls = []
    cases = {name: (lambda name=name: calls.append(name)) for name in ('a', 'b', 'c')}
    times = utils.time_interleaved(cases, warmup=1, repeat=2)
    assert calls == ['a', 'b', 'c'] * 3
    assert set(times) == {'a', 'b', 'c'}
    for timing in times.values():
        assert 0 <= timing.min_ms <= timing.median_ms <= timing.max_ms


def test_format_table_fills_templates_from_fields(utils):
    rows = [dict(name='x', ms=1.25, ratio=None), dict(name='long name', ms=10.0, ratio=2.0)]
    columns = [('name', '{name}'), ('ms', '{ms:.1f}'), ('ratio', '{ratio:.2f}x')]
    assert utils.format_table(rows, columns, markdown=True).splitlines() == [
        '| name | ms | ratio |', '|---|---|---|', '| x | 1.2 | -x |',
        '| long name | 10.0 | 2.00x |']
    assert utils.format_table(rows, columns, markdown=False).splitlines() == [
        '     name    ms  ratio', '        x   1.2     -x', 'long name  10.0  2.00x']


def test_write_json_writes_the_rows(utils, tmp_path):
    rows = [dict(model='m', shape=(1, 2), ms=None)]
    utils.write_json(rows, str(tmp_path / 'rows.json'))
    assert json.loads((tmp_path / 'rows.json').read_text()) == [
        dict(model='m', shape=[1, 2], ms=None)]
    utils.write_json(rows, None)  # no --json: nothing to write


def test_parser_rejects_non_positive_counts(utils, capsys):
    parser = utils.benchmark_parser('Doc.\n\nMore.', warmup=2, repeat=5, repeat_flag='--steps')
    args = parser.parse_args(['--steps', '3', '--json', 'rows.json'])
    assert (args.repeat, args.warmup, args.threads, args.json) == (3, 2, None, 'rows.json')
    with pytest.raises(SystemExit):
        parser.parse_args(['--steps', '0'])
    assert 'expected a positive int, got 0' in capsys.readouterr().err
    with pytest.raises(argparse.ArgumentTypeError, match='expected an int >= 0, got -1'):
        utils.non_negative_int('-1')
