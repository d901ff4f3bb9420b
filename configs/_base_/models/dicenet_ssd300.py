# DiCENet-SSD300 (mmdice's reconstruction of the paper's detector, spec section 7):
# DiCENet s=2.4 built for 224 (so ImageNet weights fit; the 38/19/10 maps of a 300
# input go through the DiCE units' dynamic scaling), DiCESSDNeck (extra levels 5, 3, 1
# and a bottom-up EfficientPyrPool decoder), an SSDLite-style head (depth-wise 3x3 +
# 1x1 per map) with the reference's priors: sizes int(linspace(0.1, 1.05) * 300).
norm_cfg = dict(type='BN', eps=1e-5)
data_preprocessor = dict(
    type='DetDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_size_divisor=1)
model = dict(
    type='SingleStageDetector',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='mmdice.DiCENet',
        widen_factor=2.4,
        input_size=224,
        out_indices=(2, 3, 4),
        norm_cfg=norm_cfg),
    neck=dict(
        type='mmdice.DiCESSDNeck',
        in_channels=(278, 556, 1112),
        extra_channels=(256, 256, 128),
        extra_paddings=(1, 1, 0),
        num_decoded=4,
        proj_channels=(16, 16, 32, 32),
        norm_cfg=norm_cfg),
    bbox_head=dict(
        type='mmdice.DiCESSDHead',
        in_channels=(278, 556, 1112, 256, 256, 128),
        num_classes=80,
        use_depthwise=True,
        norm_cfg=norm_cfg,
        act_cfg=dict(type='ReLU'),
        anchor_generator=dict(
            type='SSDAnchorGenerator',
            scale_major=False,
            input_size=300,
            strides=[8, 16, 32, 64, 100, 300],
            ratios=[[2, 3]] * 6,
            min_sizes=[30, 77, 125, 172, 220, 267],
            max_sizes=[77, 125, 172, 220, 267, 315]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[0.1, 0.1, 0.2, 0.2])),
    train_cfg=dict(
        # the reference matches priors at IoU 0.45 (ssd_config.iou_threshold)
        assigner=dict(
            type='MaxIoUAssigner',
            pos_iou_thr=0.45,
            neg_iou_thr=0.45,
            min_pos_iou=0.,
            ignore_iof_thr=-1,
            gt_max_assign_all=False),
        sampler=dict(type='PseudoSampler'),
        smoothl1_beta=1.,
        allowed_border=-1,
        pos_weight=-1,
        neg_pos_ratio=3,
        debug=False),
    test_cfg=dict(
        nms_pre=1000,
        nms=dict(type='nms', iou_threshold=0.45),
        min_bbox_size=0,
        score_thr=0.01,
        max_per_img=200))
