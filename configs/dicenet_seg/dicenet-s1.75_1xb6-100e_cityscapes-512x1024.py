# DiCENet s=1.75, Cityscapes, stage 2 of EdgeNets (1024x512 fine-tuning):
# the s=1.0 recipe (dicenet-s1.0_1xb6-100e_cityscapes-512x1024.py) with the s=1.75 widths.
_base_ = './dicenet-s1.0_1xb6-100e_cityscapes-512x1024.py'
model = dict(backbone=dict(widen_factor=1.75), decode_head=dict(in_channels=[24, 24, 210, 420]))
load_from = 'work_dirs/dicenet-s1.75_1xb25-100e_cityscapes-256x512/epoch_100.pth'
