# DiCENet-SSD300 on COCO 2017 (paper Table 6: 0.9 GFLOPs, 25.1 mAP; see README.md).
# The backbone starts from an ImageNet DiCENet s=2.4 classifier trained with
# configs/dicenet/dicenet-s2.4_8xb64_in1k.py: set `pretrained` to its checkpoint.
_base_ = [
    '../_base_/models/dicenet_ssd300.py', '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/ssd_hybrid_100e.py', '../_base_/det_runtime.py'
]
pretrained = 'work_dirs/dicenet-s2.4_8xb64_in1k/epoch_150.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    bbox_head=dict(num_classes=80))
# the authors' batch 192 at lr 0.01 (8 GPUs x 24 images)
optim_wrapper = dict(optimizer=dict(lr=0.01))
auto_scale_lr = dict(base_batch_size=192)
