# A small DiCENet (s=0.5) trained on the synthetic shapes classification set: a smoke
# test of the whole pipeline that finishes on a CPU in a few minutes.
#   python tools/dataset_converters/generate_shapes.py --task classification \
#       --out data/shapes/classification --num-images 2400 --image-size 64
#   python tools/train.py configs/dicenet/dicenet-s0.5_1xb32_shapes-64px.py
_base_ = ['../_base_/default_runtime.py']

num_classes = 3  # mmdice.testing.shapes.SHAPE_CLASSES: circle, square, triangle
image_size = 64

model = dict(
    type='ImageClassifier',
    # DiCE units are built for the 64x64 input: 8/4/2 pixel features in stages 1-3
    backbone=dict(type='mmdice.DiCENet', widen_factor=0.5, input_size=image_size),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='mmdice.DiCEClsHead',
        num_classes=num_classes,
        in_channels=192,
        mid_channels=1024,
        groups=4,
        dropout_ratio=0.1,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, ),
        # small initial logits: the reference's fan_out init of the last layer gives
        # logits of ~10 for 3 classes, which diverges in a short, warm-up-free run
        init_cfg=[
            dict(type='Kaiming', layer='Conv2d', mode='fan_out', nonlinearity='relu',
                 distribution='normal'),
            dict(type='Normal', layer='Linear', std=0.01, bias=0),
        ]))

dataset_type = 'CustomDataset'  # class folders: train/<class>/*.png, val/<class>/*.png
data_root = 'data/shapes/classification'
data_preprocessor = dict(
    num_classes=num_classes,
    mean=[127.5, 127.5, 127.5],
    std=[64.0, 64.0, 64.0],
    to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomFlip', prob=[0.25, 0.25], direction=['horizontal', 'vertical']),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='train',
                 pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=64,
    num_workers=0,
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='val',
                 pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

max_epochs = 6
# AdamW converges in far fewer steps than the ImageNet recipe's SGD on this small task
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=3e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, by_epoch=True, begin=1,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=32)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2, save_best='auto'))
# CPU friendly: gloo for `torchrun ... --launcher pytorch`, fixed seed
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
