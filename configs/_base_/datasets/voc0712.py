# PASCAL VOC 07+12 trainval -> VOC 07 test (mmdet's layout: data/VOCdevkit/VOC2007, VOC2012).
# SSD pipelines at 300x300 (the SSD512 configs change their Resize).
_base_ = './ssd300_pipelines.py'
dataset_type = 'VOCDataset'
data_root = 'data/VOCdevkit/'
train_dataloader = dict(
    batch_size=24,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(
        type='ConcatDataset',
        # VOCDataset adds a different `dataset_type` to each metainfo
        ignore_keys=['dataset_type'],
        datasets=[
            dict(type=dataset_type, data_root=data_root,
                 ann_file='VOC2007/ImageSets/Main/trainval.txt',
                 data_prefix=dict(sub_data_root='VOC2007/'),
                 filter_cfg=dict(filter_empty_gt=True, min_size=32),
                 pipeline={{_base_.train_pipeline}}),
            dict(type=dataset_type, data_root=data_root,
                 ann_file='VOC2012/ImageSets/Main/trainval.txt',
                 data_prefix=dict(sub_data_root='VOC2012/'),
                 filter_cfg=dict(filter_empty_gt=True, min_size=32),
                 pipeline={{_base_.train_pipeline}}),
        ]))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root,
                 ann_file='VOC2007/ImageSets/Main/test.txt',
                 data_prefix=dict(sub_data_root='VOC2007/'),
                 test_mode=True, pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
# 11-point mAP at IoU 0.5, as mmdet's VOC configs (the VOC2007 devkit metric)
val_evaluator = dict(type='VOCMetric', metric='mAP', eval_mode='11points')
test_evaluator = val_evaluator
