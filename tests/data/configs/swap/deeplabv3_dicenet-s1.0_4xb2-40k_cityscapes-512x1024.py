# Backbone swap: mmseg's own DeepLabV3 (ASPP), the dilated ResNet-50 replaced by DiCENet
# s=1.0, levels 3 and 4 (strides 16 and 32): the ASPP head reads index 1 (464 channels),
# the auxiliary FCN head index 0 (232 channels).
_base_ = 'mmseg::deeplabv3/deeplabv3_r50-d8_4xb2-40k_cityscapes-512x1024.py'
crop_size = (512, 1024)
model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='mmdice.DiCENet',
        widen_factor=1.0,
        input_size=crop_size,
        out_indices=(3, 4)),
    decode_head=dict(in_index=1, in_channels=464),
    auxiliary_head=dict(in_index=0, in_channels=232))
