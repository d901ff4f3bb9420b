"""What tools/train.py, tools/test.py and tools/deployment/test_deployed.py share: launcher arguments, work
directory, config overrides, Runner construction, and distributed runs of
mmengine's Runner on machines without a GPU."""
import contextlib
import copy
import glob
import os
import os.path as osp
import re

import torch

#: ``work_dirs/<config name>/<checkpoint>.pth``: where tools/train.py writes a config's checkpoints.
_WORK_DIR_CHECKPOINT = re.compile(r'(?:^|/)work_dirs/(?P<config>[^/]+)/[^/]+\.pth$')


def add_launch_args(parser, cfg_options_example):
    """Adds --cfg-options, --launcher and --local-rank to an argparse parser.

    Args:
        parser (argparse.ArgumentParser): the tool's parser.
        cfg_options_example (str): key=value pairs shown in the help.
    """
    from mmengine.config import DictAction

    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help=f'override config settings, key=value pairs, e.g. {cfg_options_example}; '
        'lists as key="[a,b]"')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_launch_args(parser, argv=None):
    """``parser.parse_args(argv)``, exporting LOCAL_RANK when the launcher did not."""
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def apply_launch_args(cfg, args):
    """Sets ``cfg.launcher`` and ``cfg.work_dir`` (--work-dir, else the config's,
    else ./work_dirs/<config name>)."""
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])


def enable_visualization(cfg, show_dir):
    """Turn on the codebase's VisualizationHook so it writes an image of every
    test image into ``show_dir``.

    The hook of each codebase takes different arguments, chosen by the
    config's ``default_scope``.
    """
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise ValueError('--show-dir needs default_hooks.visualization (a VisualizationHook) '
                         'in the config')
    scope = cfg.get('default_scope', 'mmengine')
    if scope == 'mmpretrain':
        hook.enable = True
        hook.out_dir = show_dir
    elif scope == 'mmdet':
        hook.draw = True
        hook.test_out_dir = show_dir
    elif scope == 'mmseg':
        hook.draw = True
        cfg.visualizer.save_dir = show_dir
    else:
        raise ValueError(f'--show-dir supports default_scope mmpretrain, mmdet or mmseg, '
                         f'got {scope}')
    # the hooks draw every ``interval``-th test iteration (50 or 5000 by default): every image
    hook.interval = 1


def build_runner(cfg):
    """The default Runner, or the config's ``runner_type`` from the RUNNERS registry."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


def build_checked_runner(cfg, args, checkpoint):
    """The Runner of ``cfg`` (distributed set-up from ``args.launcher``), once its
    model config is known to build with fitting channels (:func:`check_model_config`)
    and its model to fit ``checkpoint`` (None: nothing to load). mmengine loads
    non-strictly, skipping tensors of other shapes; ``args.allow_partial_load``
    accepts that, listing what does not fit in the log."""
    from mmdice.utils import check_model_checkpoint
    check_model_config(cfg)
    prepare_cpu_distributed(cfg, args.launcher)
    runner = build_runner(cfg)
    if checkpoint is not None:
        check_model_checkpoint(
            runner.model, checkpoint, allow_partial=args.allow_partial_load,
            target=f'the model of {args.config}', logger=runner.logger,
            hint='--allow-partial-load loads only the tensors that fit')
    return runner


def build_model(cfg):
    """The model of ``cfg`` as the Runner builds it: in the config's default
    scope, with the config's top-level ``data_preprocessor`` as default."""
    from mmengine.registry import MODELS, DefaultScope
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', copy.deepcopy(cfg.data_preprocessor))
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        return MODELS.build(model_cfg)


def check_model_config(cfg):
    """Build the model of ``cfg`` once before the Runner (which logs the
    environment and the whole config first; building takes a fraction of a
    second) so that a config mistake is one line: an unknown argument of an
    mmdice module (UnknownArgumentError) or an mmdice backbone whose channels
    do not fit its neck or head (ChannelMismatchError), both ValueErrors."""
    from mmdice.utils import check_backbone_channels
    check_backbone_channels(build_model(cfg))


def prepare_cpu_distributed(cfg, launcher):
    """Let ``torchrun ... --launcher pytorch`` train on CPUs with the gloo backend.

    mmengine 0.10.7 assumes GPUs once a launcher is set: its
    ``init_dist`` calls ``torch.cuda.set_device`` and its default DDP wrapper
    passes ``device_ids=[LOCAL_RANK]``, both of which fail without a GPU.
    When no GPU is visible and ``launcher == 'pytorch'``, this joins the
    process group itself (gloo; the Runner then skips its own
    initialisation) and wraps the model with ``device_ids=None``. Does
    nothing with a GPU or without a launcher.

    Args:
        cfg (mmengine.Config): the run's config; ``model_wrapper_cfg`` is set
            when absent and ``env_cfg.dist_cfg.backend`` must be gloo.
        launcher (str): the tool's ``--launcher``.

    Returns:
        bool: whether the CPU set-up was applied.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher != 'pytorch':
        raise ValueError(f'without a GPU only launcher "pytorch" (torchrun) is supported, '
                         f'got {launcher!r}')
    backend = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('backend', 'nccl')
    if backend != 'gloo':
        raise ValueError('distributed training without a GPU needs '
                         f"env_cfg.dist_cfg.backend='gloo', got {backend!r}")
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(
            backend='gloo', rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']))
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False)
    return True


@contextlib.contextmanager
def distributed_session():
    """Leave the process group cleanly when the wrapped run ends.

    mmengine's Runner joins a process group (or :func:`prepare_cpu_distributed`
    does) but never leaves it. A gloo group still alive at interpreter exit is
    torn down by static destructors while its worker threads run, which
    aborts a rank with ``terminate called without an active exception``
    (SIGABRT) after a successful run. On success every rank meets at a
    barrier, so none tears the group down while another still uses it, and
    then destroys it; on an error the group is destroyed without the barrier
    (the other ranks may never reach it) and the error propagates.
    """
    try:
        yield
    except BaseException:
        _destroy_process_group(barrier=False)
        raise
    _destroy_process_group(barrier=True)


def _destroy_process_group(barrier):
    distributed = torch.distributed
    if not (distributed.is_available() and distributed.is_initialized()):
        return
    if barrier:
        distributed.barrier()
    distributed.destroy_process_group()


def check_dataset_paths(cfg, loaders):
    """Fail early, naming the file, when a dataset of the config is not on disk.

    Walks the ``dataset`` of each named dataloader (through wrappers such as
    ``ConcatDataset`` and ``RepeatDataset``) and checks that every
    ``data_root`` and every ``ann_file`` (joined to its ``data_root`` when
    relative) exists, so a missing dataset is reported before a model is
    built instead of deep inside a dataset class. Remote paths (``s3://``
    and the like) are not checked.

    Args:
        cfg (mmengine.Config): the run's config.
        loaders (Sequence[str]): dataloader keys, e.g. ``('train_dataloader', )``;
            absent or ``None`` loaders are skipped.

    Raises:
        FileNotFoundError: naming the loader, the missing path and how to fix it.
    """
    for loader in loaders:
        loader_cfg = cfg.get(loader)
        if loader_cfg is None or loader_cfg.get('dataset') is None:
            continue
        for where, dataset in _dataset_cfgs(loader_cfg['dataset'], f'{loader}.dataset'):
            data_root = dataset.get('data_root')
            ann_file = dataset.get('ann_file')
            if any('://' in str(path) for path in (data_root, ann_file)):
                continue  # remote storage (petrel, s3, http): left to the file backend
            missing = None
            if data_root and not osp.isdir(data_root):
                missing = f'data_root {data_root!r} is not a directory'
            elif ann_file:
                path = ann_file if osp.isabs(ann_file) or not data_root \
                    else osp.join(data_root, ann_file)
                if not osp.isfile(path):
                    missing = f'ann_file {path!r} does not exist'
            if missing:
                raise FileNotFoundError(
                    f'{where}: {missing}. Prepare the dataset (see the README of the '
                    f"config's folder) or point the config at it, e.g. --cfg-options "
                    f'{where}.data_root=PATH')


def _dataset_cfgs(dataset, where):
    """Yield ``(key path, dataset config)`` of a dataset config and the ones it wraps."""
    yield where, dataset
    if dataset.get('dataset') is not None:
        yield from _dataset_cfgs(dataset['dataset'], f'{where}.dataset')
    for index, inner in enumerate(dataset.get('datasets') or ()):
        yield from _dataset_cfgs(inner, f'{where}.datasets.{index}')


def display_path(path):
    """``path`` relative to the working directory when inside it, else absolute."""
    relative = osp.relpath(osp.abspath(path))
    return osp.abspath(path) if relative.startswith(os.pardir) else relative


def find_stage_config(checkpoint, config_path):
    """The config whose training writes ``checkpoint`` (``work_dirs/<name>/...pth``):
    ``<name>.py`` among the configs around ``config_path`` (the ``configs`` folder
    it lies in, else its own folder) or mmdice's configs; None if none."""
    match = _WORK_DIR_CHECKPOINT.search(str(checkpoint).replace(os.sep, '/'))
    if match is None:
        return None
    from mmdice.config_prefix import mmdice_configs_dir
    folder = osp.dirname(osp.abspath(config_path))
    roots = [folder]
    while osp.dirname(folder) != folder:
        if osp.basename(folder) == 'configs':
            roots = [folder]
            break
        folder = osp.dirname(folder)
    try:
        roots.append(mmdice_configs_dir())
    except FileNotFoundError:
        pass
    for root in roots:
        found = sorted(glob.glob(osp.join(root, '**', f'{match["config"]}.py'), recursive=True))
        if found:
            return found[0]
    return None


def check_load_from(cfg, config_path, train_tool='tools/train.py'):
    """Fail early, saying what to do, when the config's local ``load_from`` checkpoint is missing.

    A config that fine-tunes the result of another (the second step of a
    recipe, e.g. SSD512 from SSD300, or 384x384 segmentation from 256x256)
    names that config's checkpoint, ``work_dirs/<first config>/epoch_N.pth``:
    the message names the first step's config and command, where its
    checkpoint lands, and ``--cfg-options load_from=None`` to train from scratch.

    Args:
        cfg (mmengine.Config): the run's config (after --cfg-options).
        config_path (str): the config file given to the tool.
        train_tool (str): the training script, as shown in the message.

    Raises:
        InputFileError: one line, when ``load_from`` is a local path that does not exist.
    """
    from mmdice.utils import InputFileError
    load_from = cfg.get('load_from')
    if not load_from or '://' in str(load_from) or osp.exists(load_from):
        return
    missing = f'load_from checkpoint {load_from} does not exist'
    scratch = 'from scratch with --cfg-options load_from=None'
    first = find_stage_config(load_from, config_path)
    if first is None:
        raise InputFileError(f'{missing}: point load_from at a checkpoint '
                             f'(--cfg-options load_from=PATH), or train {scratch}')
    from mmengine.config import Config
    first_cfg = Config.fromfile(first)
    name = osp.splitext(osp.basename(first))[0]
    epochs = first_cfg.get('train_cfg', {}).get('max_epochs')
    lands = (f'work_dirs/{name}/epoch_{epochs}.pth' if epochs else f'work_dirs/{name}/')
    first, config_path = display_path(first), display_path(config_path)
    raise InputFileError(
        f'{missing}: {config_path} is the second step of a two-step recipe and fine-tunes the '
        f'model trained by {first}. Train that first (python {train_tool} {first} writes '
        f'{lands}; with another --work-dir pass --cfg-options load_from=PATH), or train '
        f'{config_path} {scratch}')
