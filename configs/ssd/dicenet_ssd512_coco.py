# DiCENet-SSD512, step 2 of the authors' two-step recipe: the SSD300 model of step 1
# (configs/ssd/dicenet_ssd300_coco.py, whose training writes `load_from` below)
# fine-tuned at 512x512 with every BatchNorm frozen (`--freeze-bn`, lr 0.005, batch 60).
# Train step 1 first, point `load_from` at its checkpoint, or train from scratch with
# `--cfg-options load_from=None` (tools/train.py names both when the file is missing).
_base_ = [
    '../_base_/models/dicenet_ssd512.py', '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/ssd_hybrid_100e.py', '../_base_/det_runtime.py'
]
load_from = 'work_dirs/dicenet_ssd300_coco/epoch_100.pth'
input_size = 512
norm_cfg = dict(type='BN', eps=1e-5, requires_grad=False)
model = dict(
    backbone=dict(norm_cfg=norm_cfg, norm_eval=True),
    neck=dict(norm_cfg=norm_cfg),
    bbox_head=dict(num_classes=80, norm_cfg=norm_cfg))
train_pipeline = [
    dict(step, scale=(input_size, input_size)) if step['type'] == 'Resize' else step
    for step in _base_.train_pipeline
]
test_pipeline = [
    dict(step, scale=(input_size, input_size)) if step['type'] == 'Resize' else step
    for step in _base_.test_pipeline
]
train_dataloader = dict(batch_size=8, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
# batch 64 at lr 0.005 (8 GPUs x 8 images; the authors: 60)
optim_wrapper = dict(optimizer=dict(lr=0.005))
auto_scale_lr = dict(base_batch_size=64)
