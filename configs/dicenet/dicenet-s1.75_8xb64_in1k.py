# DiCENet s=1.75 (182.24 MFLOPs at 224x224), DiCENet-E150-B512 recipe: the s=2.4
# config (dicenet-s2.4_8xb64_in1k.py) with the s=1.75 widths.
_base_ = './dicenet-s2.4_8xb64_in1k.py'

model = dict(backbone=dict(widen_factor=1.75), head=dict(in_channels=840, mid_channels=1024))
