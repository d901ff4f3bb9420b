# DiCENet s=1.75 (182.24 MFLOPs at 224x224), DiCENet-E300-B2048 recipe:
# 8 GPUs x 64 images x 4 gradient accumulations = 2048 per step, 300 epochs,
# label smoothing 0.1, EMA of the weights; RandomResizedCrop scale (0.08, 1.0).
_base_ = [
    '../_base_/models/dicenet_s1.0.py',
    '../_base_/datasets/imagenet_bs64_dicenet_crop-0.08.py',
    '../_base_/schedules/imagenet_bs2048_dicenet_e300.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(widen_factor=1.75),
    head=dict(
        in_channels=840,
        mid_channels=1024,
        dropout_ratio=0.2,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, loss_weight=1.0)))

# EMA of the weights and buffers, updated every iteration (decay 0.9999)
custom_hooks = [dict(type='EMAHook', momentum=1e-4, update_buffers=True, priority='ABOVE_NORMAL')]
