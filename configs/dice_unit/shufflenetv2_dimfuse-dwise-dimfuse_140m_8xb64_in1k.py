# ShuffleNetV2 with DimFuse + DWise + DimFuse units, 140 MFLOPs in the paper (Table 3 R3; top-1
# 66.90), E150-B512 recipe. Written by tools/misc/generate_dice_unit_configs.py: edit its ENTRIES,
# then `write`.
_base_ = [
    '../_base_/models/dicenet_s1.0.py',
    '../_base_/datasets/imagenet_bs64_dicenet_crop-0.08.py',
    '../_base_/schedules/imagenet_bs512_dicenet_e150.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(
        spatial='depthwise', fusion='dimfuse', first_fusion='dimfuse', widen_factor=None,
        channels=[24, 24, 332, 664, 1328, 1024]
    ),
    head=dict(in_channels=1328, mid_channels=1024, dropout_ratio=0.2))
