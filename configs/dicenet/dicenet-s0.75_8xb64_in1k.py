# DiCENet s=0.75 (46.83 MFLOPs at 224x224), DiCENet-E150-B512 recipe:
# 8 GPUs x 64 images, 150 epochs; RandomResizedCrop scale (0.2, 1.0) (under 80 MFLOPs).
_base_ = [
    '../_base_/models/dicenet_s1.0.py',
    '../_base_/datasets/imagenet_bs64_dicenet_crop-0.2.py',
    '../_base_/schedules/imagenet_bs512_dicenet_e150.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(widen_factor=0.75),
    head=dict(in_channels=344, mid_channels=1024, dropout_ratio=0.1))
