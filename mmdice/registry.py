"""Child registries of mmdice under mmengine's root registries (scope ``mmdice``).

Any OpenMMLab codebase builds our classes with the scope prefix, e.g.
``dict(type='mmdice.DiCENet')`` from an mmpretrain, mmseg or mmdet config:
mmengine imports this module for the ``mmdice`` scope and each registry
imports its ``locations`` on first look-up, so no ``custom_imports`` is needed.
"""
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

__all__ = ['MODELS', 'DATASETS', 'TRANSFORMS', 'PARAM_SCHEDULERS', 'OPTIM_WRAPPERS', 'HOOKS',
           'METRICS']

#: Backbones, necks, heads and layers.
MODELS = Registry('model', parent=MMENGINE_MODELS, scope='mmdice',
                  locations=['mmdice.models'])
#: Datasets.
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, scope='mmdice',
                    locations=['mmdice.datasets'])
#: Data transforms.
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, scope='mmdice',
                      locations=['mmdice.datasets'])
#: Learning-rate / momentum schedulers.
PARAM_SCHEDULERS = Registry('parameter scheduler', parent=MMENGINE_PARAM_SCHEDULERS,
                            scope='mmdice', locations=['mmdice.engine'])
#: Optimizer wrappers.
OPTIM_WRAPPERS = Registry('optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, scope='mmdice',
                          locations=['mmdice.engine'])
#: Runner hooks.
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='mmdice',
                 locations=['mmdice.engine'])
#: Evaluation metrics (none yet: DiCENet uses the codebases' metrics; add the
#: package holding new ones to ``locations``).
METRICS = Registry('metric', parent=MMENGINE_METRICS, scope='mmdice')
