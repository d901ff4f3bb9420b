# DiCENet s=0.75, PASCAL VOC 2012 + SBD aug, stage 1 of EdgeNets (256x256 crops):
# the s=1.0 recipe (dicenet-s1.0_1xb40-100e_voc12aug-256x256.py) with the s=0.75 widths.
_base_ = './dicenet-s1.0_1xb40-100e_voc12aug-256x256.py'
model = dict(backbone=dict(widen_factor=0.75), decode_head=dict(in_channels=[24, 24, 86, 172]))
