# DiCENet s=1.75, PASCAL VOC 2012 + SBD aug, stage 2 of EdgeNets: fine-tunes the
# 256x256 model at 384x384, batch 32, lr 0.005 (decoder x10), 100 epochs, with
# the affine parameters of every BatchNorm frozen (`--freeze-bn`: requires_grad
# False; the layers stay in train mode, so running statistics still update).
_base_ = [
    '../_base_/models/dicenet_seg.py', '../_base_/datasets/pascal_voc12_aug_384x384.py',
    '../_base_/seg_runtime.py', '../_base_/schedules/seg_hybrid_100e.py'
]
crop_size = (384, 384)
data_preprocessor = dict(size=crop_size)
norm_cfg = dict(type='BN', requires_grad=False)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(widen_factor=1.75, norm_cfg=norm_cfg),
    decode_head=dict(in_channels=[24, 24, 210, 420], norm_cfg=norm_cfg))
optim_wrapper = dict(optimizer=dict(lr=0.005))
load_from = 'work_dirs/dicenet-s1.75_1xb40-100e_voc12aug-256x256/epoch_100.pth'
