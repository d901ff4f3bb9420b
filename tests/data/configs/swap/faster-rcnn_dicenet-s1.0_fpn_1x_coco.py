# Backbone swap: mmdet's own Faster R-CNN with FPN, ResNet-50 replaced by DiCENet s=1.0.
# Levels 1-4 (strides 4, 8, 16, 32, as ResNet's stages) keep the RPN's and RoI extractor's
# strides; only FPN's in_channels change.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmdice.DiCENet',
        widen_factor=1.0,
        input_size=(800, 1344),
        out_indices=(1, 2, 3, 4)),
    neck=dict(in_channels=[24, 116, 232, 464]))
