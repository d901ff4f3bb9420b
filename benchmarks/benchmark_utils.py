"""What the benchmark scripts share: their common options, the machine they ran
on, the malloc settings, one interleaved timing loop, and their output (a plain
or markdown table on stdout; with ``--json PATH`` the same rows, as a JSON list
of objects with named fields, written to PATH).

The scripts import this module as their sibling (``python benchmarks/bench_x.py``
puts benchmarks/ first on ``sys.path``).
"""
import argparse
import ctypes
import importlib.metadata
import json
import os
import os.path as osp
import platform
import statistics
import string
import time
from typing import Callable, Dict, Hashable, Iterable, List, Mapping, NamedTuple, Optional, Tuple

import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def config_path(relative: str) -> str:
    """Absolute path of ``configs/<relative>`` of this repository."""
    return osp.join(REPO_ROOT, 'configs', relative)


# Options ------------------------------------------------------------------------------------


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'expected a positive int, got {text}')
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an int >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'expected an int >= 0, got {text}')
    return value


def benchmark_parser(doc: str, *, warmup: int, repeat: int, threads: Optional[int] = None,
                     repeat_flag: str = '--repeat') -> argparse.ArgumentParser:
    """A parser, described by the first paragraph of ``doc``, with the options
    every benchmark takes: ``--threads``, ``--warmup``, ``--repeat`` (named
    ``repeat_flag``, stored as ``repeat``), ``--system-malloc``, ``--markdown``
    and ``--json PATH``."""
    parser = argparse.ArgumentParser(description=doc.split('\n\n')[0])
    threads_default = 'torch.get_num_threads()' if threads is None else threads
    parser.add_argument('--threads', type=positive_int, default=threads,
                        help=f'CPU threads for torch (default: {threads_default})')
    parser.add_argument('--warmup', type=non_negative_int, default=warmup,
                        help=f'untimed runs of each case before the timed ones (default: {warmup})')
    parser.add_argument(repeat_flag, dest='repeat', type=positive_int, default=repeat,
                        help=f'timed runs of each case (default: {repeat})')
    parser.add_argument('--system-malloc', action='store_true',
                        help="keep the C library's malloc settings (by default glibc is told to "
                        'reuse large blocks, so that page faults of fresh outputs are not timed)')
    parser.add_argument('--markdown', action='store_true', help='print markdown tables')
    parser.add_argument('--json', metavar='PATH',
                        help='also write the rows, a JSON list of objects with named fields, '
                        'to PATH')
    return parser


def apply_settings(threads: Optional[int], system_malloc: bool) -> str:
    """Set torch's CPU threads (unless ``threads`` is None) and, unless
    ``system_malloc``, make glibc reuse large blocks (:func:`reuse_large_allocations`);
    returns the description of the malloc settings."""
    if threads is not None:
        torch.set_num_threads(threads)
    return 'system default' if system_malloc else reuse_large_allocations()


# Machine ------------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def reuse_large_allocations() -> str:
    """Make glibc's malloc keep freed blocks of any size for reuse; returns a description.

    By default glibc maps each allocation above its mmap threshold (which adapts
    up to 32 MB) afresh and unmaps it on free, so every call page-faults its
    output in again; on a VM that costs about 1 ms per 5 MB, paid by both paths
    but dominating the large shapes, and whether a shape pays it depends on the
    heap's history. Reusing blocks, as jemalloc or tcmalloc do, times the
    kernels themselves.
    """
    m_trim_threshold, m_mmap_threshold = -1, -3
    try:
        libc = ctypes.CDLL('libc.so.6')
        reused = (libc.mallopt(m_mmap_threshold, 1 << 30) == 1
                  and libc.mallopt(m_trim_threshold, 2**31 - 1) == 1)
    except (OSError, AttributeError):
        reused = False
    return ('large blocks reused (glibc mallopt: mmap threshold 1 GiB, trim threshold 2 GiB)'
            if reused else 'system default (not glibc)')


def package_version(name: str) -> str:
    """``'<name> <version>'``, or ``'<name> not installed'``."""
    try:
        return f'{name} {importlib.metadata.version(name)}'
    except importlib.metadata.PackageNotFoundError:
        return f'{name} not installed'


def machine_lines(malloc: str, device: torch.device = torch.device('cpu'),
                  packages: Iterable[str] = ()) -> List[str]:
    """Where a benchmark runs: CPU and torch threads; torch, Python, whether
    mmdice's extension is built and the versions of ``packages``; the GPU of a
    cuda ``device``; the malloc settings; the load average."""
    from mmdice.ops import EXT_AVAILABLE
    versions = [f'torch {torch.__version__}', f'Python {platform.python_version()}',
                *map(package_version, packages), f'fused extension built: {EXT_AVAILABLE}']
    lines = [f'CPU: {cpu_model()} ({os.cpu_count()} logical cores), torch threads: '
             f'{torch.get_num_threads()}', ', '.join(versions)]
    if device.type == 'cuda':
        props = torch.cuda.get_device_properties(device)
        lines.append(f'GPU: {props.name} ({props.total_memory / 2**30:.0f} GiB), CUDA '
                     f'{torch.version.cuda}')
    lines.append(f'malloc: {malloc}')
    lines.append(f'load average at start: {" ".join(f"{v:.2f}" for v in os.getloadavg())}')
    return lines


# Timing -------------------------------------------------------------------------------------


class Timing(NamedTuple):
    """Statistics of one case's timed runs, in ms."""
    median_ms: float
    min_ms: float
    max_ms: float


def synchronize(device: Optional[torch.device]) -> None:
    """Wait for the work queued on a cuda ``device``; nothing for the CPU."""
    if device is not None and device.type == 'cuda':
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: Optional[torch.device] = None) -> Tuple[object, float]:
    """``(fn(), wall time in ms)``, a cuda ``device`` synchronised before the clock stops."""
    start = time.perf_counter()
    result = fn()
    synchronize(device)
    return result, (time.perf_counter() - start) * 1e3


def time_interleaved(cases: Mapping[Hashable, Callable[[], object]], warmup: int, repeat: int,
                     device: Optional[torch.device] = None) -> Dict[Hashable, Timing]:
    """Median, min and max wall time (ms) of each callable of ``cases``.

    ``warmup`` untimed rounds, then ``repeat`` timed ones; every round runs
    each case once, in turn, so a change of machine load affects all of them
    alike and their ratios stay meaningful. A cuda ``device`` is synchronised
    after the warm-up and after each timed call.
    """
    for _ in range(warmup):
        for fn in cases.values():
            fn()
    synchronize(device)
    samples = {key: [] for key in cases}
    for _ in range(repeat):
        for key, fn in cases.items():
            samples[key].append(timed(fn, device)[1])
    return {key: Timing(statistics.median(values), min(values), max(values))
            for key, values in samples.items()}


def time_infer_request(request, inputs, warmup: int, repeat: int) -> float:
    """Median wall time (ms) of ``request.infer(inputs)`` (an OpenVINO infer
    request) over ``repeat`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        request.infer(inputs)
    return statistics.median(timed(lambda: request.infer(inputs))[1] for _ in range(repeat))


def forward_backward_fields(forward: Mapping[str, Timing], forward_backward: Mapping[str, Timing],
                            reference: str) -> Dict[str, float]:
    """Row fields of paths timed forward alone and forward+backward: the medians
    ``<path>_fwd_ms`` and ``<path>_fwd_bwd_ms`` of every path, and the ``fused``
    path's speed-ups over the ``reference`` path, ``fwd_speedup`` and
    ``fwd_bwd_speedup``."""
    fields = {}
    for name in forward:
        fields[f'{name}_fwd_ms'] = forward[name].median_ms
        fields[f'{name}_fwd_bwd_ms'] = forward_backward[name].median_ms
    for pass_ in ('fwd', 'fwd_bwd'):
        fields[f'{pass_}_speedup'] = fields[f'{reference}_{pass_}_ms'] / fields[f'fused_{pass_}_ms']
    return fields


# Output -------------------------------------------------------------------------------------


class _CellFormatter(string.Formatter):
    """str.format that writes '-' for a field whose value is None."""

    def format_field(self, value, format_spec):
        return '-' if value is None else super().format_field(value, format_spec)


def format_table(rows: List[dict], columns: List[Tuple[str, str]], markdown: bool) -> str:
    """``rows`` as a table: one line per row and one cell per ``(header, template)``
    of ``columns``, the template a str.format string over the row's fields
    (e.g. ``'{median_ms:.1f}'``; a field that is None prints '-'). Right-aligned
    plain text, or markdown."""
    formatter = _CellFormatter()
    header = [title for title, _ in columns]
    body = [[formatter.format(template, **row) for _, template in columns] for row in rows]
    if markdown:
        lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
        return '\n'.join(lines + ['| ' + ' | '.join(cells) + ' |' for cells in body])
    widths = [max(len(cells[i]) for cells in [header] + body) for i in range(len(header))]
    return '\n'.join('  '.join(cell.rjust(width) for cell, width in zip(cells, widths))
                     for cells in [header] + body)


def write_json(rows: List[dict], path: Optional[str]) -> None:
    """Write ``rows`` to ``path`` as a JSON list (tuples become lists); nothing when
    ``path`` is None (no ``--json``)."""
    if path is None:
        return
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(rows, f, indent=1)
        f.write('\n')
