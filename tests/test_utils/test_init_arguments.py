"""Unknown constructor arguments of mmdice's registered classes: one line naming them,
a close match and the accepted ones, from any codebase's registry."""
import pytest
from mmengine.registry import DefaultScope

import mmdice.engine  # noqa: F401
import mmdice.models  # noqa: F401
from mmdice.registry import MODELS, OPTIM_WRAPPERS, PARAM_SCHEDULERS
from mmdice.utils import UnknownArgumentError
from mmdice.utils.init_arguments import accepted_arguments, check_init_arguments


def codebase_models(scope):
    if scope == 'mmdet':
        from mmdet.registry import MODELS as CODEBASE_MODELS
    elif scope == 'mmseg':
        from mmseg.registry import MODELS as CODEBASE_MODELS
    else:
        from mmpretrain.registry import MODELS as CODEBASE_MODELS
    return CODEBASE_MODELS


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_typo_in_a_config_names_the_argument_a_close_match_and_the_accepted(scope):
    pytest.importorskip(scope)
    with DefaultScope.overwrite_default_scope(scope):
        with pytest.raises(UnknownArgumentError) as error:
            codebase_models(scope).build(dict(type='mmdice.DiCENet', widen_facter=1.0))
    message = str(error.value)
    assert isinstance(error.value, TypeError) and isinstance(error.value, ValueError)
    assert message.startswith("mmdice.DiCENet got unknown argument 'widen_facter' "
                              "(did you mean 'widen_factor'?); it takes widen_factor, "
                              'input_size, num_stages, out_indices, ')
    assert message.endswith('deploy, init_cfg, pretrained') and '\n' not in message


def test_several_unknown_arguments_and_no_close_match():
    with pytest.raises(UnknownArgumentError,
                       match=r"mmdice\.DiCESSDNeck got unknown arguments 'in_channel' \(did you "
                             r"mean 'in_channels'\?\), 'colour'; it takes in_channels, "), \
            DefaultScope.overwrite_default_scope('mmdice'):
        MODELS.build(dict(type='DiCESSDNeck', in_channel=(8, 16), colour='red'))


def test_arguments_passed_on_to_the_parent_class_are_accepted():
    # DiCESSDHead(*args, deploy, **kwargs) takes mmdet SSDHead's arguments too
    assert accepted_arguments(MODELS.get('DiCESSDHead'))[:3] == ['deploy', 'num_classes',
                                                                  'in_channels']
    assert 'loss' in accepted_arguments(MODELS.get('DiCEClsHead'))
    head = MODELS.get('DiCEClsHead')(num_classes=3, in_channels=64, mid_channels=64,
                                     topk=(1, ))
    assert head.topk == (1, )


def test_scheduler_and_optimizer_wrapper_typos():
    import torch
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    # Built in mmdice's scope: an earlier test may have left another codebase's current.
    with DefaultScope.overwrite_default_scope('mmdice'):
        with pytest.raises(UnknownArgumentError, match=r"mmdice\.HybridLR got unknown argument "
                                                       r"'cycle_length' \(did you mean 'cycle_len'"):
            PARAM_SCHEDULERS.build(dict(type='HybridLR', optimizer=optimizer, cycle_length=5))
        with pytest.raises(UnknownArgumentError, match=r"mmdice\.BF16OptimWrapper got unknown "
                                                       r"argument 'clip_gradient'"):
            OPTIM_WRAPPERS.build(dict(type='BF16OptimWrapper', optimizer=optimizer,
                                      clip_gradient=dict(max_norm=1)))


def test_every_registered_class_checks_its_arguments():
    for registry in (MODELS, PARAM_SCHEDULERS, OPTIM_WRAPPERS):
        for name, cls in registry.module_dict.items():
            assert getattr(cls.__dict__.get('__init__'), 'checks_arguments', False), name


def test_wrapping_is_idempotent_and_keeps_the_signature():
    import inspect
    cls = MODELS.get('DiCENet')
    wrapped = cls.__init__
    assert check_init_arguments(cls) is cls and cls.__init__ is wrapped
    assert 'widen_factor' in inspect.signature(cls).parameters
