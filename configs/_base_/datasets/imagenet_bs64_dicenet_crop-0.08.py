# ImageNet-1k, 64 images per GPU, the EdgeNets classification augmentation for
# DiCENet models above 80 MFLOPs (s > 1.0): RandomResizedCrop(224, scale=(0.08, 1.0))
# (the standard 8-100 % of the area) + horizontal flip; validation as the base file.
_base_ = './imagenet_bs64_dicenet_crop-0.2.py'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.08, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
