# DiCENet s=1.0, Cityscapes, stage 1 of EdgeNets: 512x256 (w x h) crops, batch 25,
# lr 0.009 (decoder x10), 100 epochs of the hybrid schedule. 20 outputs: the 19
# train ids + 'background' (id 19, never a target; see the dataset config).
_base_ = [
    '../_base_/models/dicenet_seg_cityscapes.py', '../_base_/datasets/cityscapes.py',
    '../_base_/seg_runtime.py', '../_base_/schedules/seg_hybrid_100e.py'
]
crop_size = (256, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(widen_factor=1.0),
    decode_head=dict(
        in_channels=[24, 24, 116, 232]))
