"""Models of mmdice, registered in :data:`mmdice.registry.MODELS`.

Importing this package also registers the FLOP and activation handles of ``mmdice::dim_conv``
(:func:`mmdice.models.utils.register_dim_conv_handles`), so that the codebases' own
``get_flops`` tools (mmengine's ``get_model_complexity_info``) count DimConv.
A config building ``mmdice.*`` models imports it on the first registry look-up.
"""
from .utils import register_dim_conv_handles
from .backbones import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .deploy import DeployMixin, outermost_deploy_modules, switch_to_deploy  # noqa: F401

register_dim_conv_handles()
