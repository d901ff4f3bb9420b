"""Child registries of mmdice under mmengine's root registries (scope ``mmdice``).

Any OpenMMLab codebase builds our classes with the scope prefix, e.g.
``dict(type='mmdice.DiCENet')`` from an mmpretrain, mmseg or mmdet config:
mmengine imports this module for the ``mmdice`` scope and each registry
imports its ``locations`` on first look-up, so no ``custom_imports`` is needed.

The registries wrap each class they register so that an unknown constructor
argument (a config typo) raises one line naming it, a close match and the
accepted ones (:mod:`mmdice.utils.init_arguments`).
"""
import inspect

from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import Registry

import mmdice.utils.torch_load  # noqa: F401  (the scope's checkpoints load under torch >= 2.6)
from mmdice.utils.init_arguments import check_init_arguments

__all__ = ['MODELS', 'PARAM_SCHEDULERS', 'OPTIM_WRAPPERS']


class ArgumentCheckingRegistry(Registry):
    """A Registry whose classes refuse unknown constructor arguments in one line."""

    def _register_module(self, module, module_name=None, force=False):
        if inspect.isclass(module):
            check_init_arguments(module, f'{self.scope}.{module.__name__}')
        super()._register_module(module, module_name, force)


#: Backbones, necks, heads and layers, and DeployedModel (exported models in a runtime).
MODELS = ArgumentCheckingRegistry('model', parent=MMENGINE_MODELS, scope='mmdice',
                                  locations=['mmdice.models', 'mmdice.apis.deployed'])
#: Learning-rate / momentum schedulers.
PARAM_SCHEDULERS = ArgumentCheckingRegistry('parameter scheduler',
                                            parent=MMENGINE_PARAM_SCHEDULERS, scope='mmdice',
                                            locations=['mmdice.engine'])
#: Optimizer wrappers.
OPTIM_WRAPPERS = ArgumentCheckingRegistry('optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS,
                                          scope='mmdice', locations=['mmdice.engine'])
