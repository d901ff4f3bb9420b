# ResNet with Point-wise + DimConv + DimFuse units, 52 MFLOPs in the paper (Table 1 DU 25-60;
# top-1 61.35), E150-B512 recipe. Written by tools/misc/generate_dice_unit_configs.py: edit its
# ENTRIES, then `write`.
_base_ = [
    '../_base_/models/dice_unit_resnet.py',
    '../_base_/datasets/imagenet_bs64_dicenet_crop-0.2.py',
    '../_base_/schedules/imagenet_bs512_dicenet_e150.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(
        spatial='dimconv', fusion='dimfuse', first_fusion='pointwise', widen_factor=0.3
    ),
    head=dict(in_channels=152))
