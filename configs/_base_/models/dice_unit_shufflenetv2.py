# ShuffleNetV2 with DiCE units (DiCENet) or with the units' ablations for ImageNet-1k
# (DiCENet Sec. 3.4, Tables 1-3): mmdice.DiCENet + global average pooling + the DiCE
# classifier. The configs of configs/dice_unit set the backbone's widths (widen_factor or
# channels) and spatial/fusion/first_fusion, and the head's in_channels/dropout_ratio.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='mmdice.DiCENet', widen_factor=1.0, input_size=224),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='mmdice.DiCEClsHead',
        num_classes=1000,
        in_channels=464,
        mid_channels=1024,
        groups=4,
        dropout_ratio=0.1,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5),
    ))
