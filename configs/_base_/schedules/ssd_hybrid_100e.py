# The EdgeNets detection recipe (README of model/detection, written for ESPNetv2-SSD; the
# DiCENet-SSD code never ran, spec section 7.2): SGD momentum 0.9, weight decay 5e-4,
# 100 epochs of the "hybrid" schedule (61 cyclic epochs with 5-epoch cycles peaking at
# 5x the base lr, then linear decay). The base lr is set by each config.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='mmdice.HybridLR', cyclic_epochs=61, cycle_len=5, begin=0, end=100,
         by_epoch=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
