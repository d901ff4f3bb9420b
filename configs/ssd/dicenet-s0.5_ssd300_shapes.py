# The main job of `make demo`: a small DiCENet-SSD300 (DiCENet s=0.5) trained from scratch
# on the embedded synthetic shapes detection set (COCO json), on a CPU in minutes:
#   python tools/dataset_converters/generate_shapes.py --task detection \
#       --out data/shapes/detection --num-images 1600
#   python tools/train.py configs/ssd/dicenet-s0.5_ssd300_shapes.py
#   python tools/test.py configs/ssd/dicenet-s0.5_ssd300_shapes.py \
#       work_dirs/dicenet-s0.5_ssd300_shapes/epoch_5.pth --show-dir vis
_base_ = [
    '../_base_/models/dicenet_ssd300.py', '../_base_/datasets/coco_detection.py',
    '../_base_/det_runtime.py'
]
classes = ('circle', 'square', 'triangle')  # mmdice.testing.shapes.SHAPE_CLASSES
model = dict(
    backbone=dict(widen_factor=0.5),
    neck=dict(in_channels=(48, 96, 192), extra_channels=(128, 128, 64),
              proj_channels=(16, 16, 16, 16)),
    bbox_head=dict(in_channels=(48, 96, 192, 128, 128, 64), num_classes=len(classes)))

data_root = 'data/shapes/detection'
metainfo = dict(classes=classes)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(300, 300), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations/train.json',
                 data_prefix=dict(img='images/'), filter_cfg=dict(filter_empty_gt=True),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations/val.json',
                 data_prefix=dict(img='images/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + '/annotations/val.json')
test_evaluator = val_evaluator

max_epochs = 5
# AdamW converges in far fewer steps than SGD on this small task
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=5e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    # `--show-dir` draws the detections scored 0.5 or more
    visualization=dict(type='DetVisualizationHook', score_thr=0.5),
    checkpoint=dict(type='CheckpointHook', interval=max_epochs, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
auto_scale_lr = dict(base_batch_size=8)
