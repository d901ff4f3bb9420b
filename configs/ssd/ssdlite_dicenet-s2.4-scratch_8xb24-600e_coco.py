# Backbone swapping as users do it: mmdet's own SSDLite config, with its MobileNetV2
# replaced by DiCENet s=2.4 and only the channel numbers that depend on it changed.
# DiCENet levels 3 and 4 (strides 16 and 32, 556 and 1112 channels) take the place of
# MobileNetV2's out_indices (4, 7); the units are built for mmdet's 320x320 input.
_base_ = 'mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py'
custom_imports = dict(imports=['mmdice.models'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmdice.DiCENet',
        widen_factor=2.4,
        input_size=320,
        out_indices=(3, 4)),
    neck=dict(in_channels=(556, 1112), out_channels=(556, 1112, 512, 256, 256, 128)),
    bbox_head=dict(type='mmdice.DiCESSDHead', in_channels=(556, 1112, 512, 256, 256, 128)))
