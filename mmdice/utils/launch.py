"""Distributed runs of mmengine's Runner on machines without a GPU."""
import os

import torch


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
