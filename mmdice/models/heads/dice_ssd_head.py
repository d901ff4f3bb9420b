"""mmdet's SSDHead, made able to predict.

mmdet 3.3.0's ``SSDHead.__init__`` skips ``AnchorHead.__init__``, so the head
has no ``loss_cls``, while ``BaseDenseHead._predict_by_feat_single`` reads it:
``predict``, validation and every inference API fail with ``AttributeError:
'SSDHead' object has no attribute 'loss_cls'`` (mmdet issues 11305, 11780;
the fix was never released).
"""
from mmcv.cnn import ConvModule
from mmdet.models.dense_heads import SSDHead
from mmdet.models.losses import CrossEntropyLoss

from mmdice.registry import MODELS
from ..deploy import DeployMixin
from ..utils import fold_conv_module


@MODELS.register_module()
class DiCESSDHead(DeployMixin, SSDHead):
    """:class:`mmdet.models.dense_heads.SSDHead` that also predicts.

    It records ``loss_cls`` as what SSD's loss computes: a softmax cross
    entropy over ``num_classes + 1`` classes, background last (``SSDHead``'s
    ``loss_by_feat_single`` calls ``F.cross_entropy`` itself, so training is
    unchanged). The loss has no parameters or buffers, so checkpoints of
    ``SSDHead`` and ``DiCESSDHead`` are interchangeable. Arguments are those
    of ``SSDHead``, and ``deploy``: build the deploy (inference) form
    directly, as :meth:`switch_to_deploy` leaves it.
    """

    def __init__(self, *args, deploy: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_cls = CrossEntropyLoss(use_sigmoid=False, loss_weight=1.0)
        self.deploy = False
        if deploy:
            self.switch_to_deploy()

    def switch_to_deploy(self) -> None:
        """Fold the BatchNorm of each conv -> BatchNorm ``ConvModule`` of the
        head's own towers (``cls_convs``, ``reg_convs``: ``SSDHead`` builds
        them with ``stacked_convs`` or ``use_depthwise``) into its conv, in
        place. Exact in eval mode, inference only, idempotent."""
        for tower in (*self.cls_convs, *self.reg_convs):
            for module in tower.modules():
                if isinstance(module, ConvModule):
                    fold_conv_module(module)
        self.deploy = True
