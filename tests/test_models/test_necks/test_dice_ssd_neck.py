"""DiCESSDNeck: map sizes and channels of SSD300/512, the decoder, bad arguments."""
import pytest
import torch

from mmdice.models.necks import DiCESSDNeck


def backbone_maps(channels, size, batch=1):
    return tuple(torch.randn(batch, c, -(-size // stride), -(-size // stride))
                 for c, stride in zip(channels, (8, 16, 32)))


@pytest.mark.parametrize('size, extra_channels, paddings, sides', [
    (300, (64, 32, 16), (1, 1, 0), (38, 19, 10, 5, 3, 1)),
    (512, (64, 32, 16, 16), (1, 1, 1, 1), (64, 32, 16, 8, 4, 2, 1)),
])
def test_maps_of_ssd300_and_ssd512(size, extra_channels, paddings, sides):
    neck = DiCESSDNeck(in_channels=(24, 48, 96), extra_channels=extra_channels,
                       extra_paddings=paddings, num_decoded=4, proj_channels=(8, 8, 8, 8))
    outs = neck(backbone_maps((24, 48, 96), size, batch=2))
    assert neck.out_channels == (24, 48, 96) + extra_channels
    assert [tuple(out.shape) for out in outs] == [
        (2, channels, side, side) for channels, side in zip(neck.out_channels, sides)]


def test_decoder_carries_coarse_information_to_the_finest_map():
    torch.manual_seed(0)
    neck = DiCESSDNeck(in_channels=(8, 8, 8), extra_channels=(8, 8, 8), num_decoded=4,
                       proj_channels=(4, 4, 4, 4)).eval()
    maps = backbone_maps((8, 8, 8), 300)
    changed = (maps[0], maps[1], maps[2] + 1.0)
    with torch.no_grad():
        base, moved = neck(maps), neck(changed)
    # the stride-32 map reaches the stride-8 output only through the decoder
    assert not torch.allclose(base[0], moved[0])
    without_decoder = DiCESSDNeck(in_channels=(8, 8, 8), extra_channels=(8, 8, 8),
                                  num_decoded=0, proj_channels=()).eval()
    with torch.no_grad():
        assert torch.equal(without_decoder(maps)[0], maps[0])
    # the finest map keeps its own features (residual)
    assert base[0].shape == maps[0].shape


def test_undecoded_maps_are_the_extra_levels():
    neck = DiCESSDNeck(in_channels=(8, 8, 8), extra_channels=(8, 8, 8), num_decoded=2,
                       proj_channels=(4, 4)).eval()
    maps = backbone_maps((8, 8, 8), 300)
    with torch.no_grad():
        outs = neck(maps)
    assert torch.equal(outs[2], maps[2])
    with torch.no_grad():
        assert torch.equal(outs[3], neck.extra_levels[0](maps[2]))


@pytest.mark.parametrize('kwargs, message', [
    (dict(in_channels=()), 'in_channels'),
    (dict(in_channels=(8, 0, 8)), 'in_channels'),
    (dict(extra_channels=(8, 8.5)), 'extra_channels'),
    (dict(extra_paddings=(1, 1)), 'extra_paddings'),
    (dict(extra_paddings=(1, 1, 2)), 'extra_paddings'),
    (dict(num_decoded=6), 'num_decoded'),
    (dict(proj_channels=(8, 8)), 'proj_channels'),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DiCESSDNeck(**kwargs)


def test_wrong_number_of_maps():
    neck = DiCESSDNeck(in_channels=(8, 8, 8))
    with pytest.raises(ValueError, match='3 backbone maps'):
        neck(backbone_maps((8, 8), 300))
