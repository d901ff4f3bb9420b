# DiCENet s=1.5, Cityscapes, stage 1 of EdgeNets (512x256 crops):
# the s=1.0 recipe (dicenet-s1.0_1xb25-100e_cityscapes-256x512.py) with the s=1.5 widths.
_base_ = './dicenet-s1.0_1xb25-100e_cityscapes-256x512.py'
model = dict(backbone=dict(widen_factor=1.5), decode_head=dict(in_channels=[24, 24, 176, 352]))
