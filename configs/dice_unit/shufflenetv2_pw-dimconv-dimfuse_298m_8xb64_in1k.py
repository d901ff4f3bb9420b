# ShuffleNetV2 with Point-wise + DimConv + DimFuse units, 298 MFLOPs in the paper (Table 1 DU
# 270-320; top-1 72.90), E150-B512 recipe. Written by tools/misc/generate_dice_unit_configs.py:
# edit its ENTRIES, then `write`.
_base_ = [
    '../_base_/models/dicenet_s1.0.py',
    '../_base_/datasets/imagenet_bs64_dicenet_crop-0.08.py',
    '../_base_/schedules/imagenet_bs512_dicenet_e150.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(
        spatial='dimconv', fusion='dimfuse', first_fusion='pointwise', widen_factor=2.4
    ),
    head=dict(in_channels=1112, mid_channels=1280, dropout_ratio=0.2))
