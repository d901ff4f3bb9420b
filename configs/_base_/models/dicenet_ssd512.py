# DiCENet-SSD512: the SSD300 model with one more extra level. A stride-2 pyramid from
# the 64x64 stride-8 map reaches 1x1 after six halvings, so SSD512 has 7 maps (64, 32,
# 16, 8, 4, 2, 1), as mmdet's SSD512. The reference's prior config lists only 6 levels
# (it has no 2x2 level although its network returns one); the prior sizes here follow
# its rule, int(linspace(ceil(0.1 * 512), ceil(1.05 * 512), levels + 1)), for 7 levels.
_base_ = './dicenet_ssd300.py'
model = dict(
    neck=dict(extra_channels=(256, 256, 128, 128), extra_paddings=(1, 1, 1, 1)),
    bbox_head=dict(
        in_channels=(278, 556, 1112, 256, 256, 128, 128),
        anchor_generator=dict(
            input_size=512,
            strides=[8, 16, 32, 64, 128, 256, 512],
            ratios=[[2, 3]] * 7,
            min_sizes=[52, 121, 190, 260, 329, 399, 468],
            max_sizes=[121, 190, 260, 329, 399, 468, 538])))
