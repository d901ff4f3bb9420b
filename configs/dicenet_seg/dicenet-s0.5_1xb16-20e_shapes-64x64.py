# DiCENet s=0.5 segmentation on the embedded shapes data set (VOC layout), a
# CPU-sized smoke-training recipe. Make the data with (writes data/shapes/segmentation,
# beside data/shapes/classification and data/shapes/detection)
#   python tools/dataset_converters/generate_shapes.py --task all --out data/shapes
# or only this set (200 images of 64x64, the generator's defaults):
#   python tools/dataset_converters/generate_shapes.py --task segmentation \
#       --out data/shapes/segmentation --num-images 200 --image-size 64
# Classes: 'background' + mmdice.testing.shapes.SHAPE_CLASSES. The DiCE units
# are built for the 64x64 input (input_size=64, i.e. 8x8 / 4x4 maps).
_base_ = [
    '../_base_/models/dicenet_seg.py', '../_base_/seg_runtime.py',
    '../_base_/schedules/seg_hybrid_100e.py'
]
classes = ('background', 'circle', 'square', 'triangle')
palette = [[0, 0, 0], [220, 20, 60], [0, 128, 0], [0, 0, 230]]
crop_size = (64, 64)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(widen_factor=0.5, input_size=64),
    decode_head=dict(
        in_channels=[24, 24, 48, 96],
        # EdgeNets' min(num_classes // 2, 16) would give a 2-channel pyramid
        # bottleneck for 4 classes; use the 16 of its base decoder width.
        channels=16,
        num_classes=len(classes)))

dataset_type = 'BaseSegDataset'
data_root = 'data/shapes/segmentation'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
dataset_common = dict(
    type=dataset_type,
    data_root=data_root,
    metainfo=dict(classes=classes, palette=palette),
    data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
    img_suffix='.jpg',
    seg_map_suffix='.png')
train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        **dataset_common, ann_file='ImageSets/Segmentation/train.txt', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        **dataset_common, ann_file='ImageSets/Segmentation/val.txt', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [
    dict(type='mmdice.HybridLR', cyclic_epochs=7, cycle_len=3, begin=0, end=20, by_epoch=True),
]
train_cfg = dict(max_epochs=20, val_interval=20)
default_hooks = dict(
    logger=dict(interval=5),
    checkpoint=dict(interval=20, max_keep_ckpts=1, save_best=None),
    visualization=dict(type='SegVisualizationHook', draw=False))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
