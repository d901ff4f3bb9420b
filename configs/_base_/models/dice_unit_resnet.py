# ResNet (ResNet-50 stage depths, equal-width bottlenecks) with DiCE units for ImageNet-1k
# (DiCENet Sec. 3.4, Tables 1-3): mmdice.DiCEResNet + global average pooling + a linear
# classifier. The configs of configs/dice_unit set the backbone's widen_factor/spatial/
# fusion/first_fusion and head.in_channels.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='mmdice.DiCEResNet', widen_factor=1.0, input_size=224),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=512,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5),
    ))
