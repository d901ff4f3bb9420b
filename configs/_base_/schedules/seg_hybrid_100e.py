# EdgeNets segmentation schedule: SGD (momentum 0.9, weight decay 4e-5), decoder
# at 10x the backbone's lr, 100 epochs of the "hybrid" lr schedule (61 cyclic
# epochs with 5-epoch cycles, then linear decay). The base lr (0.009 for the
# first stage, 0.005 for fine-tuning) is set by each config.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.009, momentum=0.9, weight_decay=4e-5),
    paramwise_cfg=dict(custom_keys={'decode_head': dict(lr_mult=10)}),
    clip_grad=None)
param_scheduler = [
    dict(type='mmdice.HybridLR', cyclic_epochs=61, cycle_len=5, begin=0, end=100,
         by_epoch=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=True),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=5, max_keep_ckpts=2,
                    save_best='mIoU', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
