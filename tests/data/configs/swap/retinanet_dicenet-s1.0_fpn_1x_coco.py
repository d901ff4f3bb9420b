# Backbone swap: mmdet's own RetinaNet, ResNet-50 replaced by DiCENet s=1.0. Levels 1-4
# (strides 4, 8, 16, 32) stand where ResNet's four stages were, so only FPN's in_channels
# change (README "Swapping DiCENet into other configs"); units built for the 1333x800 resize
# padded to multiples of 32.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmdice.DiCENet',
        widen_factor=1.0,
        input_size=(800, 1344),
        out_indices=(1, 2, 3, 4)),
    neck=dict(in_channels=[24, 116, 232, 464]))
