# Full DiCENet s=1.0 ImageNet classifier (EdgeNets: 70.71 MFLOPs, 1.81 M params at 224x224),
# for tools/analysis_tools/get_flops.py tests.
default_scope = 'mmpretrain'
model = dict(
    type='ImageClassifier',
    backbone=dict(type='mmdice.DiCENet', widen_factor=1.0, input_size=224),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='mmdice.DiCEClsHead',
        num_classes=1000,
        in_channels=464,
        mid_channels=1024,
        dropout_ratio=0.1,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
