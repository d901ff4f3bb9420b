# MobileNet with DWise + Point-wise units, 317 MFLOPs in the paper (Table 1 SC 270-320; top-1
# 68.40), E150-B512 recipe. Written by tools/misc/generate_dice_unit_configs.py: edit its ENTRIES,
# then `write`.
_base_ = [
    '../_base_/models/dice_unit_mobilenet.py',
    '../_base_/datasets/imagenet_bs64_dicenet_crop-0.08.py',
    '../_base_/schedules/imagenet_bs512_dicenet_e150.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(
        spatial='depthwise', fusion='pointwise', widen_factor=0.74
    ),
    head=dict(in_channels=760))
