# DiCENet s=0.5, PASCAL VOC 2012 + SBD aug, stage 1 of EdgeNets: 256x256 crops,
# batch 40, lr 0.009 (decoder x10), 100 epochs of the hybrid schedule.
_base_ = [
    '../_base_/models/dicenet_seg.py', '../_base_/datasets/pascal_voc12_aug.py',
    '../_base_/seg_runtime.py', '../_base_/schedules/seg_hybrid_100e.py'
]
crop_size = (256, 256)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(widen_factor=0.5),
    decode_head=dict(in_channels=[24, 24, 48, 96]))
