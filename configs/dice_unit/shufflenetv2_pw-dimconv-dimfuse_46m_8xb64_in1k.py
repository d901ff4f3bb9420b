# ShuffleNetV2 with Point-wise + DimConv + DimFuse units, 46 MFLOPs in the paper (Table 1 DU
# 25-60; top-1 62.80), E150-B512 recipe. Written by tools/misc/generate_dice_unit_configs.py: edit
# its ENTRIES, then `write`.
_base_ = [
    '../_base_/models/dicenet_s1.0.py',
    '../_base_/datasets/imagenet_bs64_dicenet_crop-0.2.py',
    '../_base_/schedules/imagenet_bs512_dicenet_e150.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(
        spatial='dimconv', fusion='dimfuse', first_fusion='pointwise', widen_factor=0.75
    ),
    head=dict(in_channels=344, mid_channels=1024, dropout_ratio=0.1))
