# DiCENet s=0.2 (14.9 MFLOPs at 224x224), DiCENet-E150-B512 recipe: the s=1.0
# config (dicenet-s1.0_8xb64_in1k.py) with the s=0.2 widths.
_base_ = './dicenet-s1.0_8xb64_in1k.py'

model = dict(backbone=dict(widen_factor=0.2), head=dict(in_channels=128))
