"""ForAug recombination (official ``ForNet.recombine``, tobna/ForAug fornet.py) as exact-formula
and statistics tests, the mmcv transform, the ForNet dataset and the offline preparation."""
import json
import math
import os.path as osp

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFilter

from mmmask.datasets.foraug import (ForNetDataset, fg_bg_ratio, foreground_rgba,
                                    inpaint_background, prepare_fornet)
from mmmask.datasets.transforms.foraug import (ForegroundBackgroundRecombine, bates_position,
                                               orig_image_probability, recombine, sharpen_alpha,
                                               use_original_image)

BG_W, BG_H = 120, 90
FG_COLOUR = (250, 10, 20)


def _noise_bg(seed: int = 0) -> Image.Image:
    rng = np.random.RandomState(seed)
    return Image.fromarray(rng.randint(0, 120, (BG_H, BG_W, 3), dtype=np.uint8))


def _square_fg(w: int = 30, h: int = 20, half_transparent: bool = False) -> Image.Image:
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., :3] = FG_COLOUR
    rgba[..., 3] = 255
    if half_transparent:
        rgba[:, :w // 2, 3] = 0
    return Image.fromarray(rgba, 'RGBA')


def test_exact_formula_of_size_position_and_blur():
    """Draw order and formulas of the official recombine: uniform(lo(1-j), hi(1+j)) / fill ·
    size_fact, sides round(sqrt(A·s·h/w)) / round(sqrt(A·s·w/h)), Bates(0) = centre,
    sigma = (rand·0.9 + 0.1)·sigma_max."""
    fg = _square_fg(30, 20, half_transparent=True)  # fill 0.5
    out = recombine(fg, _noise_bg(), 0.08, 0.15, fg_bates_n=0, size_fact=1.3,
                    rng=np.random.RandomState(7))
    ref = np.random.RandomState(7)
    scale = ref.uniform(0.08 * 0.7, 0.15 * 1.3) / 0.5 * 1.3
    w = round(math.sqrt(BG_W * BG_H * scale * 30 / 20))
    h = round(math.sqrt(BG_W * BG_H * scale * 20 / 30))
    sigma = (ref.rand() * 0.9 + 0.1) * 4.0
    assert out.fg_scale == pytest.approx(scale, rel=1e-12)
    assert out.fg_size == (w, h)
    assert out.offset == (round(0.5 * (BG_W - w)), round(0.5 * (BG_H - h)))
    assert out.sigma == pytest.approx(sigma, rel=1e-12)


@pytest.mark.parametrize('mode,expect', [('max', 0.15), ('min', 0.05), ('mean', 0.10)])
def test_fixed_size_modes_without_jitter(mode, expect):
    fg = _square_fg(40, 40)
    out = recombine(fg, _noise_bg(), 0.05, 0.15, fg_scale_jitter=0.0, fg_size_mode=mode,
                    mask_smoothing_sigma=0.0, rng=np.random.RandomState(0))
    assert out.fg_size[0] * out.fg_size[1] / (BG_W * BG_H) == pytest.approx(expect, abs=0.006)


def test_area_ratio_stays_in_the_jitter_range_and_covers_it():
    """Object pixels / image pixels ∈ [min(r)(1-j), max(r)(1+j)] (fill-corrected), both ends
    reached over many draws."""
    fg = _square_fg(30, 20, half_transparent=True)
    rng = np.random.RandomState(1)
    ratios = []
    for _ in range(300):
        out = recombine(fg, _noise_bg(), 0.05, 0.12, mask_smoothing_sigma=0.0, rng=rng)
        ratios.append((out.mask > 0.5).sum() / (BG_W * BG_H))
    lo, hi = 0.05 * 0.7, 0.12 * 1.3
    ratios = np.array(ratios)
    assert ratios.min() >= lo * 0.9 and ratios.max() <= hi * 1.1  # rounding of the sides
    assert ratios.min() < lo * 1.15 and ratios.max() > hi * 0.9


def test_composite_has_the_foreground_exactly_where_the_mask_says():
    bg = _noise_bg(3)
    out = recombine(_square_fg(), bg, 0.1, 0.1, mask_smoothing_sigma=0.0,
                    rng=np.random.RandomState(2))
    img, mask = np.asarray(out.image), out.mask
    assert img.shape == (BG_H, BG_W, 3) and mask.shape == (BG_H, BG_W)
    inside = mask == 1.0
    assert inside.sum() == out.fg_size[0] * out.fg_size[1]
    assert (img[inside] == FG_COLOUR).all()
    assert (img[mask == 0] == np.asarray(bg)[mask == 0]).all()  # background untouched
    x, y = out.offset
    assert inside[y:y + out.fg_size[1], x:x + out.fg_size[0]].all()


def test_edge_blur_then_sharpen_is_the_official_point_map():
    assert [sharpen_alpha(p) for p in (0, 128, 129, 200, 255)] == [0, 0, 3, 145, 255]
    rgba = np.array(_square_fg(60, 60))
    rgba[:10, :, 3] = rgba[-10:, :, 3] = rgba[:, :10, 3] = rgba[:, -10:, 3] = 0  # object + margin
    fg = Image.fromarray(rgba, 'RGBA')
    rng = np.random.RandomState(5)
    out = recombine(fg, _noise_bg(), 0.2, 0.2, fg_scale_jitter=0.0, fg_bates_n=0, rng=rng)
    ref = np.random.RandomState(5)
    ref.uniform(0.2, 0.2)
    sigma = (ref.rand() * 0.9 + 0.1) * 4.0
    alpha = fg.resize(out.fg_size).split()[-1].filter(ImageFilter.GaussianBlur(radius=sigma))
    expect = np.asarray(alpha.point(lambda p: 2 * p - 255 if p > 128 else 0), np.float32) / 255
    x, y = out.offset
    got = out.mask[y:y + out.fg_size[1], x:x + out.fg_size[0]]
    np.testing.assert_array_equal(got, expect)
    assert got[got.shape[0] // 2, got.shape[1] // 2] == 1.0 and got[0, 0] == 0.0
    assert 0 < ((got > 0) & (got < 1)).sum()  # a soft edge


def test_bates_position_statistics():
    rng = np.random.RandomState(0)
    for n, var in ((1, 1 / 12), (4, 1 / 48)):
        z = np.array([bates_position(n, rng) for _ in range(4000)])
        assert abs(z.mean() - 0.5) < 0.02
        assert z.var() == pytest.approx(var, rel=0.1)
    assert bates_position(0, rng) == (0.5, 0.5)
    z = np.array([bates_position(-4, rng) for _ in range(4000)])  # wrapped: mass at the edges
    assert ((z < 0.15) | (z > 0.85)).mean() > 0.5
    assert z.var() > 1 / 12 and z.min() >= 0 and z.max() < 1


def test_offsets_follow_the_bates_draws():
    rng = np.random.RandomState(4)
    outs = [recombine(_square_fg(), _noise_bg(), 0.05, 0.05, fg_bates_n=3,
                      mask_smoothing_sigma=0.0, rng=rng) for _ in range(300)]
    for o in outs:
        z1, z2 = o.position
        assert o.offset == (round(z1 * (BG_W - o.fg_size[0])), round(z2 * (BG_H - o.fg_size[1])))
    centres = np.array([(o.offset[0] + o.fg_size[0] / 2) / BG_W for o in outs])
    assert centres.std() < 0.5 * np.sqrt(1 / 12)  # concentrated at the centre


def test_rel_jut_out_lets_the_object_leave_the_image():
    rng = np.random.RandomState(0)
    offs = [recombine(_square_fg(), _noise_bg(), 0.1, 0.1, rel_jut_out=0.5,
                      mask_smoothing_sigma=0.0, rng=rng).offset for _ in range(200)]
    assert min(o[0] for o in offs) < 0 and min(o[1] for o in offs) < 0


@pytest.mark.parametrize('nonant', range(9))
def test_fg_in_nonant_puts_the_object_inside_its_cell(nonant):
    out = recombine(_square_fg(), _noise_bg(), 0.3, 0.3, fg_in_nonant=nonant,
                    mask_smoothing_sigma=0.0, rng=np.random.RandomState(nonant))
    col, row = nonant % 3, nonant // 3
    x, y = out.offset
    w, h = out.fg_size
    assert col * BG_W / 3 - 0.5 <= x and x + w <= (col + 1) * BG_W / 3 + 0.5
    assert row * BG_H / 3 - 0.5 <= y and y + h <= (row + 1) * BG_H / 3 + 0.5
    assert w * h / (BG_W * BG_H / 9) <= 0.3 * 1.3 + 0.05  # a nonant's share


def test_size_fact_scales_the_area():
    areas = {}
    for f in (0.5, 1.0, 2.0):
        out = recombine(_square_fg(), _noise_bg(), 0.1, 0.1, size_fact=f, fg_scale_jitter=0.0,
                        mask_smoothing_sigma=0.0, rng=np.random.RandomState(0))
        areas[f] = out.fg_size[0] * out.fg_size[1]
    assert areas[0.5] / areas[1.0] == pytest.approx(0.5, rel=0.08)
    assert areas[2.0] / areas[1.0] == pytest.approx(2.0, rel=0.08)


def test_too_large_foreground_is_cropped_to_the_background():
    for train in (True, False):
        out = recombine(_square_fg(60, 20), _noise_bg(), 3.0, 3.0, fg_scale_jitter=0.0,
                        mask_smoothing_sigma=0.0, train=train, rng=np.random.RandomState(0))
        assert out.fg_size[0] == BG_W and out.fg_size[1] <= BG_H
        assert out.offset[0] == 0


def test_deterministic_under_a_seed():
    a = recombine(_square_fg(), _noise_bg(), 0.1, 0.2, rng=np.random.RandomState(11))
    b = recombine(_square_fg(), _noise_bg(), 0.1, 0.2, rng=np.random.RandomState(11))
    c = recombine(_square_fg(), _noise_bg(), 0.1, 0.2, rng=np.random.RandomState(12))
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert not np.array_equal(np.asarray(a.image), np.asarray(c.image))
    np.random.seed(11)  # default: NumPy's global state, as the official code
    d = recombine(_square_fg(), _noise_bg(), 0.1, 0.2)
    assert np.array_equal(np.asarray(a.image), np.asarray(d.image))


def test_orig_img_prob_schedules():
    assert orig_image_probability('linear', 3, 10) == pytest.approx(0.3)
    assert orig_image_probability('cos', 0, 10) == pytest.approx(0.0)
    assert orig_image_probability('cos', 5, 10) == pytest.approx(1 - math.cos(math.pi / 4))
    assert orig_image_probability('revlinear', 4, 10) < 0  # official quirk: never the original
    rng = np.random.RandomState(0)
    assert not any(use_original_image('revlinear', e, 10, rng) for e in range(10))
    freq = np.mean([use_original_image('linear', 7, 10, rng) for _ in range(4000)])
    assert freq == pytest.approx(0.7, abs=0.03)
    freq = np.mean([use_original_image('cos', 5, 10, rng) for _ in range(4000)])
    assert freq == pytest.approx(1 - math.cos(math.pi / 4), abs=0.03)
    assert np.mean([use_original_image(0.25, 0, 0, rng) for _ in range(4000)]) == \
        pytest.approx(0.25, abs=0.03)
    with pytest.raises(ValueError):
        orig_image_probability('sqrt', 1, 10)


def test_transform_on_a_results_dict():
    bg = np.asarray(_noise_bg())[..., ::-1].copy()
    fg = np.asarray(_square_fg())[..., [2, 1, 0, 3]].copy()
    t = ForegroundBackgroundRecombine(return_fg_mask=True, mask_smoothing_sigma=0.0, seed=0)
    res = t(dict(img=bg.copy(), fg_img=fg, fg_ratio=0.1, bg_ratio=0.2))
    img, mask = res['img'], res['gt_fg_mask']
    assert img.shape == bg.shape and res['img_shape'] == bg.shape[:2] and 'fg_img' not in res
    assert (img[mask == 1] == FG_COLOUR[::-1]).all()  # BGR in, BGR out
    assert 0.1 * 0.7 * 0.9 <= (mask == 1).mean() <= 0.2 * 1.3 * 1.1
    passthrough = t(dict(img=bg.copy(), use_original=True))
    assert np.array_equal(passthrough['img'], bg)
    with pytest.raises(KeyError, match='LoadForegroundFromFile'):
        t(dict(img=bg.copy()))


# ---------------------------------------------------------------------- offline + dataset
def _scene(cls: int, seed: int, big: bool = False):
    """Tinted noise background with a square of the class colour; returns image and mask."""
    rng = np.random.RandomState(seed)
    img = np.clip(rng.normal(100, 20, (48, 48, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros((48, 48), bool)
    s = 44 if big else 14
    y, x = rng.randint(0, 48 - s + 1, 2)
    mask[y:y + s, x:x + s] = True
    img[mask] = (40 + 100 * cls, 250, 30)
    return img, mask


def _prepare(root, pruned_big: bool = True):
    samples = [(f'c{c}', f'img{i}', *_scene(c, 10 * c + i)) for c in range(2) for i in range(3)]
    if pruned_big:
        samples.append(('c1', 'big', *_scene(1, 99, big=True)))
    return prepare_fornet(samples, str(root), 'val', blur_radius=1.0)


def test_preparation_writes_foreground_background_and_ratios(tmp_path):
    img, mask = _scene(0, 0)
    fg = foreground_rgba(img, mask)
    assert fg.shape == (14, 14, 4) and (fg[..., 3] == 255).all()
    assert fg_bg_ratio(fg, img.shape[:2]) == pytest.approx(14 * 14 / 48**2)
    bg = inpaint_background(img, mask, blur_radius=1.0)
    assert np.abs(bg[mask].astype(int) - (40, 250, 30)).sum(1).mean() > 100  # object gone
    info = _prepare(tmp_path)
    assert info['written'] == 7
    ratios = json.loads((tmp_path / 'fg_bg_ratios_val.json').read_text())
    assert ratios['c1/big.jpg'] == pytest.approx(44 * 44 / 48**2)
    assert cv2.imread(str(tmp_path / 'val/foregrounds/c0/img0.png'), cv2.IMREAD_UNCHANGED).shape \
        == (14, 14, 4)


def test_fornet_dataset_background_choices_and_pruning(tmp_path):
    _prepare(tmp_path)
    pipeline = [dict(type='LoadImageFromFile'), dict(type='mmmask.LoadForegroundFromFile'),
                dict(type='mmmask.ForegroundBackgroundRecombine', return_fg_mask=True)]
    ds = ForNetDataset(str(tmp_path), split='val', pipeline=pipeline, seed=0)
    assert len(ds) == 7 and ds.metainfo['classes'] == ('c0', 'c1')
    assert 'c1/big.jpg' not in ds.backgrounds and len(ds.all_backgrounds) == 7  # pruned (0.84)
    out = ds[0]
    assert out['img'].shape == (48, 48, 3) and out['gt_fg_mask'].max() == 1.0
    same = ForNetDataset(str(tmp_path), split='val', background_combination='same', seed=0,
                         pruning_ratio=1.1)
    for i in range(len(same)):
        info = same.get_data_info(i)
        assert info['bg_key'].split('/')[0] == info['fg_key'].split('/')[0]
    orig = ForNetDataset(str(tmp_path), split='val', background_combination='original')
    info = orig.get_data_info(2)
    assert info['bg_key'].rsplit('.', 1)[0] == info['fg_key']
    assert info['bg_ratio'] == info['fg_ratio']


def test_fornet_dataset_original_images(tmp_path):
    _prepare(tmp_path, pruned_big=False)
    for c in range(2):
        for i in range(3):
            path = tmp_path / 'orig' / f'c{c}' / f'img{i}.png'
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), _scene(c, 10 * c + i)[0])
    ds = ForNetDataset(str(tmp_path), split='val', orig_img_prob=1.0, seed=0,
                       orig_root=str(tmp_path / 'orig'), orig_ext='.png',
                       pipeline=[dict(type='LoadImageFromFile'),
                                 dict(type='mmmask.LoadForegroundFromFile'),
                                 dict(type='mmmask.ForegroundBackgroundRecombine')])
    out = ds[1]
    assert out['use_original'] and osp.basename(out['img_path']) == 'img1.png'
    assert np.array_equal(out['img'], _scene(0, 1)[0])
    with pytest.raises(ValueError, match='orig_root'):
        ForNetDataset(str(tmp_path), split='val', orig_img_prob=0.5)
    with pytest.raises(ValueError, match='epochs'):
        ForNetDataset(str(tmp_path), split='val', orig_img_prob='linear', orig_root='x')


def test_epoch_hook_drives_the_orig_img_prob_schedule(tmp_path):
    from types import SimpleNamespace

    from mmmask.datasets.foraug import ForNetEpochHook
    _prepare(tmp_path, pruned_big=False)
    ds = ForNetDataset(str(tmp_path), split='val', orig_img_prob='linear', epochs=4,
                       orig_root=str(tmp_path), seed=0)
    runner = SimpleNamespace(train_dataloader=SimpleNamespace(dataset=ds), epoch=3)
    ForNetEpochHook().before_train_epoch(runner)
    assert ds.epoch == 3
    with pytest.raises(ValueError):
        ds.epoch = 4
    ds.epoch = 0  # p = 0: never the original
    assert not any(ds.get_data_info(i)['use_original'] for i in range(len(ds)))
