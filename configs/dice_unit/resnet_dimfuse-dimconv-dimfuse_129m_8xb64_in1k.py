# ResNet with DimFuse + DimConv + DimFuse units, 129 MFLOPs in the paper (Table 3 R6; top-1
# 68.20), E150-B512 recipe. Written by tools/misc/generate_dice_unit_configs.py: edit its ENTRIES,
# then `write`.
_base_ = [
    '../_base_/models/dice_unit_resnet.py',
    '../_base_/datasets/imagenet_bs64_dicenet_crop-0.08.py',
    '../_base_/schedules/imagenet_bs512_dicenet_e150.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(
        spatial='dimconv', fusion='dimfuse', first_fusion='dimfuse', widen_factor=None,
        channels=[32, 72, 144, 288, 576]
    ),
    head=dict(in_channels=576))
