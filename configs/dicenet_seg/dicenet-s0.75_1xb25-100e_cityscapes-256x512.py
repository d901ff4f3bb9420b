# DiCENet s=0.75, Cityscapes, stage 1 of EdgeNets: 512x256 (w x h) crops, batch 25,
# lr 0.009 (decoder x10), 100 epochs of the hybrid schedule. 20 outputs: the 19
# train ids + 'background' (id 19, never a target; see the dataset config).
_base_ = [
    '../_base_/models/dicenet_seg.py', '../_base_/datasets/cityscapes.py',
    '../_base_/seg_runtime.py', '../_base_/schedules/seg_hybrid_100e.py'
]
crop_size = (256, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(widen_factor=0.75),
    decode_head=dict(
        in_channels=[24, 24, 86, 172],
        num_classes=20,
        loss_decode=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=1.0,
            avg_non_ignore=True,
            # EdgeNets class weights; the 20th class 'background' gets 0.
            class_weight=[
                2.8149201869965, 6.9850029945374, 3.7890393733978, 9.9428062438965,
                9.7702074050903, 9.5110931396484, 10.311357498169, 10.026463508606,
                4.6323022842407, 9.5608062744141, 7.8698215484619, 9.5168733596802,
                10.373730659485, 6.6616044044495, 10.260489463806, 10.287888526917,
                10.289801597595, 10.405355453491, 10.138095855713, 0.0,
            ])))
