# DiCENet s=2.4 (298 MFLOPs) for MS-COCO multi-label classification (paper Table 7:
# F1 66.92 class-wise / 73.41 overall). EdgeNets trains it like ImageNet (SGD, lr 0.1
# for batch 512, weight decay 4e-5, RandomResizedCrop + flip) with BCEWithLogits.
# The annotation files are mmpretrain MultiLabelDataset json made from COCO 2014:
#   python tools/dataset_converters/coco_to_multilabel.py \
#       data/coco/annotations/instances_train2014.json \
#       data/coco/annotations/multilabel_train2014.json   (and val2014)
_base_ = [
    '../_base_/models/dicenet_s1.0.py',
    '../_base_/schedules/imagenet_bs512_dicenet_e150.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(widen_factor=2.4),
    head=dict(
        _delete_=True,
        type='mmdice.DiCEMultiLabelClsHead',
        num_classes=80,
        in_channels=1112,
        mid_channels=1280,
        groups=4,
        dropout_ratio=0.2,
        loss=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        thr=0.5))

dataset_type = 'MultiLabelDataset'
data_root = 'data/coco'
data_preprocessor = dict(
    num_classes=80,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True,
    # multi-hot targets for the sigmoid loss
    to_onehot=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.08, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=64,
    num_workers=5,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/multilabel_train2014.json',
        data_prefix='train2014',
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=64,
    num_workers=5,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/multilabel_val2014.json',
        data_prefix='val2014',
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader

# class-wise (macro) and overall (micro) precision / recall / F1 as Table 7, plus mAP
val_evaluator = [
    dict(type='MultiLabelMetric', thr=0.5, average='macro'),
    dict(type='MultiLabelMetric', thr=0.5, average='micro'),
    dict(type='AveragePrecision'),
]
test_evaluator = val_evaluator
