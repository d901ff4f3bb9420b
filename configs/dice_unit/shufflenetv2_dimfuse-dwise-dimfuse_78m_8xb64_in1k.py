# ShuffleNetV2 with DimFuse + DWise + DimFuse units, 78 MFLOPs in the paper (Table 3 R2; top-1
# 61.80), E150-B512 recipe. Written by tools/misc/generate_dice_unit_configs.py: edit its ENTRIES,
# then `write`.
_base_ = [
    '../_base_/models/dicenet_s1.0.py',
    '../_base_/datasets/imagenet_bs64_dicenet_crop-0.2.py',
    '../_base_/schedules/imagenet_bs512_dicenet_e150.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(
        spatial='depthwise', fusion='dimfuse', first_fusion='dimfuse', widen_factor=None,
        channels=[24, 24, 206, 412, 824, 1024]
    ),
    head=dict(in_channels=824, mid_channels=1024, dropout_ratio=0.1))
