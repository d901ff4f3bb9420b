"""``_base_ = 'mmdice::ssd/dicenet_ssd300_coco.py'``: mmdice's configs as bases of any config.

mmengine 0.10.7 resolves ``package::path`` bases only for the codebases of its
own table (``mmengine.config.utils.MODULE2PACKAGE``) and only in the
``site-packages`` folder beside the package's ``dist-info``, which an editable
install does not have. Importing ``mmdice`` installs a small shim on
``mmengine.config.Config._get_cfg_path``: ``mmdice::REL`` names
``configs/REL`` of the imported mmdice (under ``mmdice/.mim/`` for a wheel or
an editable install, the repository's ``configs/`` for a source checkout on
``PYTHONPATH``). The shim is applied when ``mmengine.config`` is imported (or
at once if it already is), so ``import mmdice`` stays cheap.

Unlike the codebases' prefixes, an ``mmdice::`` base adds no ``_scope_`` to
its dicts: mmdice's configs are written for the scope of their codebase
(``default_scope`` mmdet, mmseg or mmpretrain), which they set themselves.

mmengine reads ``_base_`` before ``custom_imports``, so the prefix works in
processes that import mmdice before loading the config: mmdice's
``tools/*.py`` (also through ``mim train mmdice``) and scripts that
``import mmdice`` first; the codebases' own ``tools/train.py`` do not.
"""
import importlib
import importlib.abc
import importlib.util
import os.path as osp
import sys

__all__ = ['PREFIX', 'mmdice_configs_dir', 'resolve_mmdice_config', 'patch_mmengine_config',
           'install_config_prefix']

PREFIX = 'mmdice::'
_CONFIG_MODULE = 'mmengine.config.config'
_PACKAGE_DIR = osp.dirname(osp.abspath(__file__))


def mmdice_configs_dir() -> str:
    """The ``configs`` folder of the imported mmdice: ``mmdice/.mim/configs`` of an
    installed package, else ``configs`` beside the package of a source checkout."""
    for folder in (osp.join(_PACKAGE_DIR, '.mim', 'configs'),
                   osp.join(osp.dirname(_PACKAGE_DIR), 'configs')):
        if osp.isdir(folder):
            return folder
    raise FileNotFoundError(
        f'mmdice at {_PACKAGE_DIR} has no configs (neither .mim/configs nor ../configs): '
        'reinstall it with pip install .')


def resolve_mmdice_config(name: str) -> str:
    """The file of ``mmdice::REL`` (or of ``REL``) among mmdice's configs;
    FileNotFoundError naming it if there is none."""
    relative = name[len(PREFIX):] if name.startswith(PREFIX) else name
    path = osp.join(mmdice_configs_dir(), relative)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{PREFIX}{relative}: {path} does not exist (the configs of '
                                f'mmdice are listed by mim search mmdice)')
    return path


def patch_mmengine_config() -> None:
    """Let ``Config`` resolve ``mmdice::`` bases (idempotent)."""
    Config = importlib.import_module(_CONFIG_MODULE).Config
    original = Config._get_cfg_path
    if getattr(original, 'resolves_mmdice', False):
        return

    def _get_cfg_path(cfg_path, filename):
        if cfg_path.startswith(PREFIX):
            return resolve_mmdice_config(cfg_path), None
        return original(cfg_path, filename)

    _get_cfg_path.resolves_mmdice = True
    Config._get_cfg_path = staticmethod(_get_cfg_path)


class _PatchAfterImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Runs :func:`patch_mmengine_config` right after ``mmengine.config.config`` loads."""

    def __init__(self):
        self._loader = None

    def find_spec(self, fullname, path, target=None):
        if fullname != _CONFIG_MODULE or self._loader is not None:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        self._loader, spec.loader = spec.loader, self
        return spec

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        module.__spec__.loader = module.__loader__ = self._loader
        self._loader.exec_module(module)
        patch_mmengine_config()


def install_config_prefix() -> None:
    """Make ``mmdice::`` bases resolve in this process, now or when mmengine's
    config module is first imported."""
    if _CONFIG_MODULE in sys.modules:
        patch_mmengine_config()
    elif not any(isinstance(finder, _PatchAfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchAfterImport())
