# DiCENet-E150-B512 (paper Sec. 6, Table 4 row 1; EdgeNets train_classification.py):
# SGD, momentum 0.9, weight decay 4e-5, lr 0.1 for a total batch of 512 (8 GPUs x 64),
# 150 epochs with the authors' "hybrid" schedule (README_Classification:
# `--scheduler hybrid --clr-max 61`): epoch 0 at 0.1, then 5-epoch cycles
# 0.5, 0.4, 0.3, 0.2, 0.1 up to epoch 60, then linear decay to 0.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=4e-5))

param_scheduler = dict(
    type='mmdice.HybridLR', cyclic_epochs=61, cycle_len=5, by_epoch=True, begin=0, end=150)

train_cfg = dict(by_epoch=True, max_epochs=150, val_interval=1)
val_cfg = dict()
test_cfg = dict()

# lr 0.1 is for 512 images per iteration (world size x batch size)
auto_scale_lr = dict(base_batch_size=512)
