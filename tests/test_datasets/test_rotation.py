"""RandomRot90 (Brain-Score rotation augmentation): exact quarter turns, the angle
distribution of the two RandomApply steps, and the official keep-size (PIL) behaviour."""
import numpy as np
import pytest
from PIL import Image

from mmmask.datasets.transforms.rotation import RandomRot90, rot90_keep_size
from mmmask.registry import TRANSFORMS


def image(h=5, w=7, c=3):
    return np.arange(h * w * c, dtype=np.uint8).reshape(h, w, c)


@pytest.mark.parametrize('p90,p180,k', [(1, 0, 1), (0, 1, 2), (1, 1, 3), (0, 0, 0)])
def test_quarter_turns_are_exact(p90, p180, k):
    img = image()
    t = TRANSFORMS.build(dict(type='mmmask.RandomRot90', prob_90=p90, prob_180=p180))
    out = t(dict(img=img.copy(), img_shape=img.shape[:2]))
    np.testing.assert_array_equal(out['img'], np.rot90(img, k))
    assert out['rot90_k'] == k and out['img_shape'] == out['img'].shape[:2]
    assert out['img'].flags['C_CONTIGUOUS']
    if k == 1:  # counter-clockwise, like torchvision/PIL positive angles: top-right -> top-left
        assert (out['img'][0, 0] == img[0, -1]).all()


def test_default_angles_are_uniform():
    np.random.seed(0)
    t = RandomRot90()
    ks = [t(dict(img=image()))['rot90_k'] for _ in range(2000)]
    counts = np.bincount(ks, minlength=4) / len(ks)
    assert np.allclose(counts, 0.25, atol=0.04), counts


def test_keys_rotate_together():
    img, seg = image(4, 6), np.arange(24).reshape(4, 6)
    out = RandomRot90(prob_90=1, prob_180=0, keys=('img', 'gt_seg_map'))(
        dict(img=img, gt_seg_map=seg))
    np.testing.assert_array_equal(out['gt_seg_map'], np.rot90(seg))


@pytest.mark.parametrize('h,w', [(6, 10), (7, 10), (10, 7), (9, 4), (8, 8)])
def test_keep_size_matches_pil_rotate(h, w):
    """The official torchvision RandomRotation((90, 90)) is PIL Image.rotate(90) (expand=False,
    nearest, black fill); the 180 degree step is exact."""
    img = (np.arange(h * w * 3).reshape(h, w, 3) % 251 + 1).astype(np.uint8)
    ref90 = np.asarray(Image.fromarray(img).rotate(90))
    np.testing.assert_array_equal(rot90_keep_size(img), ref90)
    out = RandomRot90(prob_90=1, prob_180=1, keep_size=True)(dict(img=img))['img']
    np.testing.assert_array_equal(out, np.asarray(Image.fromarray(ref90).rotate(180)))
    assert out.shape == img.shape


def test_bad_probability():
    with pytest.raises(ValueError, match='prob_90'):
        RandomRot90(prob_90=2)
