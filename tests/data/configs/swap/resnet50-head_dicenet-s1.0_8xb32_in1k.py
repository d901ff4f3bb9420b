# Backbone swap: mmpretrain's own ResNet-50 ImageNet classifier, the backbone replaced by
# DiCENet s=1.0; the global pooling neck stays, the linear head takes the 464 channels of
# level 4 (stride 32).
_base_ = 'mmpretrain::resnet/resnet50_8xb32_in1k.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmdice.DiCENet',
        widen_factor=1.0,
        input_size=224,
        out_indices=(4, )),
    head=dict(in_channels=464))
