# ShuffleNetV2 with Point-wise + DimConv + Point-wise + SE units, 135 MFLOPs in the paper (Table
# 2b DimConv + Point-wise + SE; top-1 68.30), E150-B512 recipe. Written by
# tools/misc/generate_dice_unit_configs.py: edit its ENTRIES, then `write`.
_base_ = [
    '../_base_/models/dicenet_s1.0.py',
    '../_base_/datasets/imagenet_bs64_dicenet_crop-0.08.py',
    '../_base_/schedules/imagenet_bs512_dicenet_e150.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(
        spatial='dimconv', fusion='pointwise_se', first_fusion='pointwise',
        widen_factor=None, channels=[24, 24, 94, 188, 376, 1024]
    ),
    head=dict(in_channels=376, mid_channels=1024, dropout_ratio=0.2))
