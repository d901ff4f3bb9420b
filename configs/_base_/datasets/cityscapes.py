# Cityscapes (fine), 19 train ids (labelTrainIds, void = 255); mmseg layout:
#   data/cityscapes/{leftImg8bit,gtFine}/{train,val}/<city>/...
# Stage 1 of EdgeNets: 512x256 (w x h) crops after a random rescale of the
# 2048x1024 images by (0.25, 0.5); val resized to 512x256. The EdgeNets models
# have a 20th output 'background' (id 19, class weight 0): the configs keep it
# (num_classes=20) so the released weights load, labels never use it (void stays
# 255 and is ignored), and the metric's 19 classes ignore predictions of it.
dataset_type = 'CityscapesDataset'
data_root = 'data/cityscapes/'
crop_size = (256, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.25, 0.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(512, 256), keep_ratio=False),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=25,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
