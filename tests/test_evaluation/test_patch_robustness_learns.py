"""Evidence for the patch-robustness tools (Gu, Tresp & Qin, ECCV 2022) on a toy ViT trained here.

A toy ViT trained from scratch on the toy digits stays near chance (configs/hybrid_distill/), so
the test trains mmpretrain's ``ImageClassifier`` + ``VisionTransformer`` (64-d x 3 blocks x 4
heads, patch 8 on 32 px: a 4x4 grid + CLS) on a synthetic task whose evidence is spread over the
whole image (4 classes = 2 colour tints x 2 stripe orientations, random frequency / phase, pixel
noise), 300 AdamW steps (~6 s). Every patch carries the class, so a patch-sized change should
not matter, and one patch is what the paper perturbs.
"""
import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures('mmpretrain_scope')]


def synthetic(n: int, seed: int):
    """``(pixels (n, 3, 32, 32) in 0-255, labels)`` of the colour x stripes task."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(4, size=n)
    colours = np.array([[1, -1, 0], [-1, .5, 1]], np.float32)
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)
    images = []
    for c in labels:
        coord = xx if c // 2 == 0 else yy
        stripes = np.sin(coord * rng.uniform(.5, .9) + rng.uniform(0, 6.3))
        img = 127 + 50 * colours[c % 2][:, None, None] + 40 * stripes[None] + \
            rng.normal(0, 25, (3, 32, 32))
        images.append(np.clip(img, 0, 255))
    return torch.tensor(np.stack(images), dtype=torch.float32), torch.tensor(labels)


def train_toy_vit(seed: int = 0, steps: int = 300):
    from mmpretrain.registry import MODELS

    from mmmask.evaluation.robustness.patch_robustness import normalize, preprocessor_stats
    torch.manual_seed(seed)
    model = MODELS.build(dict(
        type='ImageClassifier',
        data_preprocessor=dict(num_classes=4, mean=[127.5] * 3, std=[64.] * 3),
        backbone=dict(type='VisionTransformer', img_size=32, patch_size=8,
                      arch=dict(embed_dims=64, num_layers=3, num_heads=4,
                                feedforward_channels=128)),
        head=dict(type='VisionTransformerClsHead', num_classes=4, in_channels=64)))
    mean, std = preprocessor_stats(model)
    x, y = synthetic(2048, 0)
    x = normalize(x, mean, std)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(x), (64, ), generator=gen)
        loss = torch.nn.functional.cross_entropy(model(x[idx], mode='tensor'), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return model, mean, std


def test_single_patch_attack_fools_toy_vit_natural_patch_does_not_and_temperature():
    """Measured (seed 0, 32 test images x all 16 positions, PGD 50 steps of 16 px, unbounded):
    clean 100 %; fooling rate adversarial 0.50, random noise 0.00, gaussian-noise / defocus-blur
    patch 0.00; loss increase 3.2 vs <= 0.01; attention received by the attacked patch 0.173 vs
    0.057 clean (uniform 1/17 = 0.059). With T = 4 at test time the attention on the attacked
    patch falls to 0.077 and the fooling rate to 0.32 (clean accuracy 94 %). 25 s. Over seeds (one
    random position per image, README table) the attention share always drops with T but the
    fooling rate does not always (seed 2: 0.41 -> 0.56), so only the attention is asserted."""
    from mmmask.evaluation.robustness.patch_robustness import (evaluate_patch_robustness,
                                                               normalize, patch_mask, patch_pgd,
                                                               classifier_fn)
    from mmmask.models.layers import ensure_biased_attention, set_attention_temperature
    model, mean, std = train_toy_vit()
    ensure_biased_attention(model)
    pixels, labels = synthetic(32, 1)
    x = normalize(pixels, mean, std)
    kw = dict(patch_size=8, corruptions=('gaussian_noise', 'defocus_blur'), positions='all',
              steps=50, step_size=16.0, eps=255.0, batch_size=64)
    res = evaluate_patch_robustness(model, x, labels, **kw)
    print({k: v for k, v in res['adversarial'].items() if 'map' not in k})
    assert res['clean_acc'] >= 0.9
    adv, rnd = res['adversarial'], res['random']
    nat = [res['natural/gaussian_noise'], res['natural/defocus_blur']]
    assert adv['fooling_rate'] >= 0.25
    assert max(e['fooling_rate'] for e in nat + [rnd]) <= 0.05
    assert adv['loss_increase'] > 10 * max(0.05, *(e['loss_increase'] for e in nat + [rnd]))
    # the attack pulls attention onto the attacked patch; natural / random patches do not
    assert adv['attention_share'] > 2 * adv['attention_share_clean']
    assert all(e['attention_share'] < 1.4 * e['attention_share_clean'] for e in nat + [rnd])

    # the adversarial patch stays in its patch and in budget (bounded attack, eps = 32 px)
    fn = classifier_fn(model)
    adv_x, delta = patch_pgd(fn, x, labels, (2, 1), 8, mean, std, eps=32.0, steps=20,
                             step_size=4.0)
    outside = patch_mask(x.shape, (2, 1), 8).expand_as(delta) == 0
    assert torch.all(delta[outside] == 0) and delta.abs().max() <= 32.0 + 1e-4

    # temperature: the attention share on the attacked patch falls towards uniform
    set_attention_temperature(model, 4.0)
    hot = evaluate_patch_robustness(model, x, labels, **dict(kw, corruptions=()))
    print('T=4', {k: v for k, v in hot['adversarial'].items() if 'map' not in k},
          'clean', hot['clean_acc'])
    assert hot['adversarial']['attention_share'] < adv['attention_share'] - 0.05
    assert hot['adversarial']['attention_share'] < 1.6 * hot['uniform_share']
    # reported, not asserted (seed-dependent, see the docstring): the fooling rate with T = 4
    print(f"fooling rate T=1 {adv['fooling_rate']:.3f} -> T=4 "
          f"{hot['adversarial']['fooling_rate']:.3f}")
