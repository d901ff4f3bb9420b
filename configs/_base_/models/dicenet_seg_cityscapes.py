# DiCENet segmentation model with the EdgeNets Cityscapes head: 20 outputs (the
# 19 train ids + 'background', id 19, never a target) and the authors' class
# weights, 'background' weighted 0.
_base_ = './dicenet_seg.py'
model = dict(
    decode_head=dict(
        num_classes=20,
        loss_decode=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=1.0,
            avg_non_ignore=True,
            class_weight=[
                2.8149201869965, 6.9850029945374, 3.7890393733978, 9.9428062438965,
                9.7702074050903, 9.5110931396484, 10.311357498169, 10.026463508606,
                4.6323022842407, 9.5608062744141, 7.8698215484619, 9.5168733596802,
                10.373730659485, 6.6616044044495, 10.260489463806, 10.287888526917,
                10.289801597595, 10.405355453491, 10.138095855713, 0.0,
            ])))
