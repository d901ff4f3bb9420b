# MobileNet (V1 layout) with DiCE units for ImageNet-1k (DiCENet Sec. 3.4, Table 1):
# mmdice.DiCEMobileNet + global average pooling + a linear classifier. The configs of
# configs/dice_unit set backbone.widen_factor/spatial/fusion and head.in_channels.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='mmdice.DiCEMobileNet', widen_factor=1.0, input_size=224),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=1024,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5),
    ))
