# DiCENet s=1.0 for ImageNet-1k (EdgeNets model/classification/dicenet.py, 70.7 MFLOPs).
# Other scales override backbone.widen_factor and the head's in_channels (ch4),
# mid_channels (ch5) and dropout_ratio (0.1 for s <= 1, 0.2 above).
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
