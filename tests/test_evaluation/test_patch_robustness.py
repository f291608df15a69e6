"""Patch-perturbation robustness (Gu, Tresp & Qin, ECCV 2022): ImageNet-C corruptions, the
grid-aligned PatchCorruption transform, single-patch PGD / random noise in pixel space, attention
share on the perturbed patch and the per-position evaluation."""
import numpy as np
import pytest
import torch

from mmmask.evaluation.robustness.patch_robustness import (
    CORRUPTIONS, PatchCorruption, attention_share, corrupt_image, evaluate_patch_robustness,
    fooling_rate, paste_patch, patch_grid, patch_mask, patch_pgd, patch_random_noise,
    preprocessor_stats, received_attention)

pytestmark = pytest.mark.usefixtures('mmpretrain_scope')


def _image(seed=0, size=32):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    base = np.stack([xx * 6, yy * 6, (xx + yy) * 3], -1) % 256
    return np.clip(base + rng.integers(-20, 20, base.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize('name', sorted(CORRUPTIONS))
def test_every_corruption_changes_the_image_and_keeps_its_format(name):
    img = _image()
    out = corrupt_image(img, name, 5, np.random.default_rng(0))
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - img).mean() > 1.0, name
    again = corrupt_image(img, name, 5, np.random.default_rng(0))
    assert np.array_equal(out, again)  # deterministic given the generator


@pytest.mark.parametrize('name', ['gaussian_noise', 'gaussian_blur', 'contrast', 'pixelate'])
def test_severity_increases_the_change(name):
    img = _image(size=64)
    diff = [np.abs(corrupt_image(img, name, s, np.random.default_rng(0)).astype(int) - img)
            .mean() for s in (1, 3, 5)]
    assert diff[0] < diff[1] < diff[2], diff


def test_corruption_arguments_are_checked():
    with pytest.raises(KeyError, match='choose from'):
        corrupt_image(_image(), 'snow')
    with pytest.raises(ValueError, match='severity'):
        corrupt_image(_image(), 'contrast', 6)
    with pytest.raises(ValueError, match='uint8'):
        corrupt_image(_image().astype(np.float32), 'contrast')
    with pytest.raises(KeyError):
        PatchCorruption('fog')
    with pytest.raises(ValueError, match='random'):
        PatchCorruption(position='centre')


def test_patch_corruption_touches_exactly_one_grid_patch():
    from mmmask.registry import TRANSFORMS
    t = TRANSFORMS.build(dict(type='mmmask.PatchCorruption', corruption='gaussian_noise',
                              severity=5, patch_size=16, position='random', seed=0))
    positions = set()
    for i in range(12):
        img = _image(i, 64)[..., ::-1].copy()  # BGR, as LoadImageFromFile gives
        res = t(dict(img=img.copy(), img_path=f'im{i}.png'))
        r, c = res['patch_corruption']['position']
        positions.add((r, c))
        changed = np.any(res['img'] != img, axis=-1)
        rows, cols = np.nonzero(changed)
        assert rows.min() >= 16 * r and rows.max() < 16 * (r + 1)
        assert cols.min() >= 16 * c and cols.max() < 16 * (c + 1)
        assert changed[16 * r:16 * (r + 1), 16 * c:16 * (c + 1)].mean() > 0.9
        again = t(dict(img=img.copy(), img_path=f'im{i}.png'))
        assert np.array_equal(again['img'], res['img'])  # seeded per image
    assert len(positions) > 3  # positions vary over images
    fixed = PatchCorruption('contrast', 5, patch_size=16, position=(1, 2))
    out = fixed(dict(img=_image(0, 64)))
    assert out['patch_corruption']['position'] == (1, 2)
    flat = PatchCorruption('contrast', 5, patch_size=16, position=6)
    assert flat(dict(img=_image(0, 64)))['patch_corruption']['position'] == (1, 2)
    with pytest.raises(ValueError, match='outside'):
        PatchCorruption('contrast', 5, patch_size=16, position=(4, 0))(dict(img=_image(0, 64)))


def test_patch_geometry():
    assert patch_grid(224, 224, 16) == (14, 14)
    assert patch_grid(70, 64, 16) == (4, 4)  # the remainder strip is not a patch
    mask = patch_mask((2, 3, 32, 32), torch.tensor([[0, 1], [3, 3]]), 8)
    assert mask.shape == (2, 1, 32, 32) and mask.sum() == 2 * 64
    assert mask[0, 0, :8, 8:16].all() and mask[1, 0, 24:, 24:].all()
    with pytest.raises(ValueError, match='outside'):
        patch_mask((1, 3, 32, 32), (4, 0), 8)
    clean, other = torch.zeros(1, 3, 32, 32), torch.ones(1, 3, 32, 32)
    pasted = paste_patch(clean, other, (2, 1), 8)
    assert pasted.sum() == 3 * 64 and pasted[0, :, 16:24, 8:16].all()


def test_fooling_rate_counts_only_clean_correct_images():
    labels = torch.tensor([0, 1, 2, 3])
    clean = torch.tensor([0, 1, 2, 0])  # the last one is wrong already
    pert = torch.tensor([1, 1, 0, 3])
    assert fooling_rate(clean, pert, labels) == pytest.approx(2 / 3)
    assert np.isnan(fooling_rate(torch.tensor([1]), torch.tensor([1]), torch.tensor([0])))


def test_attention_share_reads_the_patch_token():
    maps = [torch.full((2, 2, 5, 5), 0.2)]  # uniform, 1 extra token + 2x2 grid
    maps[0][:, :, :, 4] = 0.6  # every query looks at the token of cell (1, 1)
    maps[0][:, :, :, :4] = 0.1
    share = attention_share(maps, (1, 1), (2, 2), num_extra_tokens=1)
    assert share.shape == (2, 1) and torch.allclose(share, torch.tensor(0.6))
    assert torch.allclose(attention_share(maps, (0, 0), (2, 2), 1), torch.tensor(0.1))
    received = received_attention(maps, query='cls')
    assert received.shape == (2, 1, 5)
    with pytest.raises(ValueError, match='grid'):
        attention_share(maps, (0, 0), (3, 3), 1)


def tiny_classifier(kind='vit', num_classes=4):
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    backbone = dict(type='VisionTransformer', arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                                                        feedforward_channels=64),
                    img_size=32, patch_size=8) if kind == 'vit' else \
        dict(type='ResNet', depth=18, stem_channels=16, base_channels=16, out_indices=(3, ))
    head = dict(type='VisionTransformerClsHead', num_classes=num_classes, in_channels=32) \
        if kind == 'vit' else dict(type='LinearClsHead', num_classes=num_classes, in_channels=128)
    model = MODELS.build(dict(
        type='ImageClassifier', backbone=backbone,
        neck=None if kind == 'vit' else dict(type='GlobalAveragePooling'), head=head,
        data_preprocessor=dict(num_classes=num_classes, mean=[120., 110., 100.],
                               std=[60., 55., 50.], to_rgb=True)))
    model.eval()  # default torch init (mmpretrain's init_weights zeroes the ViT head)
    return model


def _inputs(model, n=6):
    mean, std = preprocessor_stats(model)
    pixels = torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 255
    return (pixels - mean) / std, mean, std


def test_single_patch_pgd_stays_in_the_patch_and_budget_and_raises_the_loss():
    from mmmask.evaluation.robustness.patch_robustness import classifier_fn
    model = tiny_classifier()
    fn = classifier_fn(model)
    x, mean, std = _inputs(model)
    with torch.no_grad():
        labels = fn(x).argmax(1)  # attack the model's own predictions
        clean_loss = torch.nn.functional.cross_entropy(fn(x), labels, reduction='none')
    for eps, pos in ((16.0, (1, 2)), (255.0, torch.tensor([[0, 0], [3, 3]] * 3))):
        adv, delta = patch_pgd(fn, x, labels, pos, 8, mean, std, eps=eps, steps=20,
                               step_size=4.0)
        mask = patch_mask(x.shape, pos, 8)
        assert torch.all(delta[mask.expand_as(delta) == 0] == 0)  # nothing outside the patch
        assert delta.abs().max() <= eps + 1e-4
        pixels = adv * std + mean
        assert pixels.min() >= -1e-3 and pixels.max() <= 255 + 1e-3
        torch.testing.assert_close(adv, (x * std + mean + delta - mean) / std)
        with torch.no_grad():
            adv_loss = torch.nn.functional.cross_entropy(fn(adv), labels, reduction='none')
        assert torch.all(adv_loss >= clean_loss - 1e-5)
        assert adv_loss.mean() > clean_loss.mean() + 0.01
    noisy, noise = patch_random_noise(x, (1, 2), 8, mean, std, eps=16.0)
    assert noise.abs().max() <= 16.0 + 1e-4 and noise.abs().max() > 8
    assert torch.all(noise[patch_mask(x.shape, (1, 2), 8).expand_as(noise) == 0] == 0)


@pytest.mark.parametrize('kind', ['vit', 'cnn'])
def test_evaluate_patch_robustness_reports_every_kind(kind):
    from mmmask.models.layers import ensure_biased_attention
    model = tiny_classifier(kind)
    if kind == 'vit':
        ensure_biased_attention(model)
    x, _, _ = _inputs(model, 4)
    with torch.no_grad():
        labels = model(x, mode='tensor').argmax(1)  # all clean-correct
    res = evaluate_patch_robustness(model, x, labels, patch_size=8,
                                    corruptions=('gaussian_noise', 'pixelate'), steps=5,
                                    step_size=16.0, batch_size=3)
    assert res['clean_acc'] == 1.0 and res['grid'] == [4, 4]
    for key in ('adversarial', 'random', 'natural/gaussian_noise', 'natural/pixelate'):
        entry = res[key]
        assert 0 <= entry['fooling_rate'] <= 1
        assert np.array(entry['fooling_rate_map']).shape == (4, 4)
        assert np.isfinite(np.array(entry['fooling_rate_map'])).all()
        assert ('attention_share' in entry) == (kind == 'vit')
    assert res['adversarial']['loss_increase'] > res['random']['loss_increase']
    if kind == 'vit':
        assert res['uniform_share'] == pytest.approx(1 / 17)
        assert len(res['adversarial']['attention_share_layers']) == 2
        assert np.array(res['adversarial']['attention_share_map']).shape == (4, 4)
    one = evaluate_patch_robustness(model, x, labels, patch_size=8, kinds=('adversarial', ),
                                    positions='random', steps=2)
    assert 'fooling_rate_map' not in one['adversarial']
