# DiCENet-E300-B2048 (paper Sec. 5.3 / 6, Table 4 row 2): 300 epochs, effective batch 2048
# through gradient accumulation (the paper: 4 GPUs x 128 x 4 accumulations; here
# 8 GPUs x 64 x 4), label-smoothed cross-entropy and EMA (set in the model / runtime
# parts of the config). The paper gives no optimizer settings for this recipe; these
# follow E150-B512 with the linear scaling rule (lr 0.1 at 512 -> 0.4 at 2048),
# 5 linear warm-up epochs and cosine decay, as usual for large-batch SGD.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.4, momentum=0.9, weight_decay=4e-5),
    accumulative_counts=4)

param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=295, eta_min=0.0, by_epoch=True, begin=5, end=300),
]

train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
val_cfg = dict()
test_cfg = dict()

# mmengine scales by world size x batch size per iteration (accumulation not included):
# lr 0.4 is for 512 images per iteration, i.e. 2048 per optimizer step with 4 accumulations
auto_scale_lr = dict(base_batch_size=512)
