# A DiCENet s=0.5 encoder (two DiCE stages, built for 224) under mmseg's FCN head,
# for tools/analysis_tools/get_flops.py tests of an mmseg config.
default_scope = 'mmseg'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', size=(64, 64)),
    backbone=dict(
        type='mmdice.DiCENet',
        widen_factor=0.5,
        input_size=224,
        num_stages=2,
        out_indices=(0, 1, 2, 3)),
    decode_head=dict(
        type='FCNHead',
        in_channels=96,
        in_index=3,
        channels=32,
        num_convs=1,
        concat_input=False,
        num_classes=4,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
