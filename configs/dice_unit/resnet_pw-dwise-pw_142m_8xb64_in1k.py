# ResNet with Point-wise + DWise + Point-wise units, 142 MFLOPs in the paper (Table 1 SC 120-170;
# Table 2b DWise + Point-wise; top-1 67.80), E150-B512 recipe. Written by
# tools/misc/generate_dice_unit_configs.py: edit its ENTRIES, then `write`.
_base_ = [
    '../_base_/models/dice_unit_resnet.py',
    '../_base_/datasets/imagenet_bs64_dicenet_crop-0.08.py',
    '../_base_/schedules/imagenet_bs512_dicenet_e150.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(
        spatial='depthwise', fusion='pointwise', first_fusion='pointwise',
        widen_factor=0.535
    ),
    head=dict(in_channels=272))
