# DiCENet s=0.1 (6.49 MFLOPs at 224x224), DiCENet-E300-B2048 recipe: the s=1.0
# config (dicenet-s1.0_8xb64-accum4-e300-ls-ema_in1k.py) with the s=0.1 widths.
_base_ = './dicenet-s1.0_8xb64-accum4-e300-ls-ema_in1k.py'

model = dict(backbone=dict(widen_factor=0.1), head=dict(in_channels=64, mid_channels=512))
