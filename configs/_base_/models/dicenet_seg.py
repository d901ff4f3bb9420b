# DiCENet segmentation network (EdgeNets DiCENetSegmentation), s = 1.0, 21 classes.
# The encoder's DiCE units are built for 224x224 (input_size) whatever the crop
# size, as in every released checkpoint; the network runs on any input whose
# sides are multiples of 16 (output stride 16).
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='mmdice.DiCENet',
        widen_factor=1.0,
        input_size=224,
        num_stages=2,
        out_indices=(0, 1, 2, 3),
        norm_cfg=norm_cfg),
    decode_head=dict(
        type='mmdice.DiCESegHead',
        # (ch0, ch1, ch2, ch3) of the width scale: strides 2, 4, 8, 16.
        in_channels=[24, 24, 116, 232],
        in_index=(0, 1, 2, 3),
        # pyramid projection width min(num_classes // 2, 16)
        channels=10,
        decoder_channels=(64, 48, 32),
        num_classes=21,
        dropout_ratio=0.,
        norm_cfg=norm_cfg,
        align_corners=True,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
                         avg_non_ignore=True)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
