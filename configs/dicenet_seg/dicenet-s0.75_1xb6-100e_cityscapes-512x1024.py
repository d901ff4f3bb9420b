# DiCENet s=0.75, Cityscapes, stage 2 of EdgeNets: fine-tunes the 512x256 model on
# 1024x512 (w x h) crops, batch 6, lr 0.005 (decoder x10), 100 epochs, BatchNorm
# affine parameters frozen (running statistics still update).
_base_ = [
    '../_base_/models/dicenet_seg_cityscapes.py', '../_base_/datasets/cityscapes_1024x512.py',
    '../_base_/seg_runtime.py', '../_base_/schedules/seg_hybrid_100e.py'
]
crop_size = (512, 1024)
data_preprocessor = dict(size=crop_size)
norm_cfg = dict(type='BN', requires_grad=False)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(widen_factor=0.75, norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=[24, 24, 86, 172],
        norm_cfg=norm_cfg))
optim_wrapper = dict(optimizer=dict(lr=0.005))
load_from = 'work_dirs/dicenet-s0.75_1xb25-100e_cityscapes-256x512/epoch_100.pth'
