# DiCENet s=1.75, PASCAL VOC 2012 + SBD aug, stage 2 of EdgeNets (384x384 fine-tuning):
# the s=1.0 recipe (dicenet-s1.0_1xb32-100e_voc12aug-384x384.py) with the s=1.75 widths.
_base_ = './dicenet-s1.0_1xb32-100e_voc12aug-384x384.py'
model = dict(backbone=dict(widen_factor=1.75), decode_head=dict(in_channels=[24, 24, 210, 420]))
load_from = 'work_dirs/dicenet-s1.75_1xb40-100e_voc12aug-256x256/epoch_100.pth'
