# ResNet with Point-wise + DimConv + Point-wise units, 132 MFLOPs in the paper (Table 2a/2b
# DimConv + Point-wise; top-1 68.10), E150-B512 recipe. Written by
# tools/misc/generate_dice_unit_configs.py: edit its ENTRIES, then `write`.
_base_ = [
    '../_base_/models/dice_unit_resnet.py',
    '../_base_/datasets/imagenet_bs64_dicenet_crop-0.08.py',
    '../_base_/schedules/imagenet_bs512_dicenet_e150.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(
        spatial='dimconv', fusion='pointwise', first_fusion='pointwise', widen_factor=0.345
    ),
    head=dict(in_channels=176))
