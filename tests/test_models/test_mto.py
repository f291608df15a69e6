"""MTO (masked token optimisation on SimMIM; UNVERIFIED reading of Choi et al., ECCV 2024):
recalibration and loss properties, baseline switch, the toy config and bad inputs."""
import os.path as osp

import pytest
import torch

from mmmask.models.selfsup.mto import MTO
from mmmask.registry import MODELS
from mmmask.utils import register_all_modules

register_all_modules()

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY = osp.join(REPO, 'configs', 'mto', 'mto_vit-tiny-p8_1xb64-30e_toy-pretrain.py')


def small(**kwargs) -> MTO:
    cfg = dict(
        backbone=dict(type='mmmask.MaskedViT', mask_token=True, fixed_pos_embed=False,
                      img_size=32, patch_size=8,
                      arch=dict(embed_dims=32, num_layers=2, num_heads=4,
                                feedforward_channels=64)),
        neck=dict(type='mmpretrain.SimMIMLinearDecoder', in_channels=32, encoder_stride=8),
        head=dict(type='mmpretrain.SimMIMHead', patch_size=8,
                  loss=dict(type='mmpretrain.PixelReconstructionLoss', criterion='L1', channel=3)),
        mask_generator=dict(type='mmmask.RandomMasking', ratio=0.5))
    cfg.update(kwargs)
    m = MTO(**cfg)
    m.init_weights()
    return m


def test_recalibration_removes_masked_keys_from_visible_queries():
    torch.manual_seed(0)
    m = small().eval()
    x = torch.randn(2, 3, 32, 32)
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[:, ::2] = True
    _, maps, _ = m.encode(x, mask)
    masked = torch.cat([torch.zeros(2, 1, dtype=torch.bool), mask], 1)
    for probs in maps.values():
        vis_to_masked = probs[:, :, ~masked[0]][:, :, :, masked[0]]
        assert vis_to_masked.abs().max() == 0
        torch.testing.assert_close(probs.sum(-1), torch.ones_like(probs.sum(-1)))
    # visible outputs then do not depend on the masked patches' content at all
    x2 = x.clone()
    x2[:, :, :8, :8] += 5  # token 0 is masked
    t1, _, _ = m.encode(x, mask)
    t2, _, _ = m.encode(x2, mask)
    torch.testing.assert_close(t1[:, 1:][~mask], t2[:, 1:][~mask])
    # the fused-attention path (used when no attention map is needed) gives the same tokens
    m_sdpa = small(loss_spa=0, loss_e=0)
    m_sdpa.load_state_dict(m.state_dict())
    m_sdpa.eval()
    t3, maps3, _ = m_sdpa.encode(x, mask, need_probs=False)
    assert maps3 == {}
    torch.testing.assert_close(t3, t1, atol=1e-5, rtol=1e-5)


def test_soft_recalibration_and_baseline_switch():
    torch.manual_seed(0)
    m = small(recalib_gamma=0.5).eval()
    mask = torch.zeros(1, 16, dtype=torch.bool)
    mask[:, 8:] = True
    _, maps, _ = m.encode(torch.randn(1, 3, 32, 32), mask)
    assert all(p[:, :, :9, 9:].sum() > 0 for p in maps.values())
    base = small(recalibrate=False, loss_spa=0, loss_e=0, loss_r=0)
    assert base.recalib_layers == set()
    losses = base.loss(torch.randn(2, 3, 32, 32))
    assert set(losses) == {'loss_rec'}


def test_loss_terms():
    masked = torch.tensor([[False, True, True, False]])
    probs = torch.tensor([[[[.25, .25, .25, .25], [.1, .2, .6, .1], [.5, .1, .2, .2],
                            [.25, .25, .25, .25]]]])
    # masked queries 1 and 2: mass on the *other* masked key = 0.6 and 0.1
    torch.testing.assert_close(MTO.sparsity_loss(probs, masked), torch.tensor(0.35))
    # entropy over visible keys: query 1 -> (.5, .5) = log 2, query 2 -> (.714, .286)
    e2 = -(torch.tensor([5 / 7, 2 / 7]) * torch.tensor([5 / 7, 2 / 7]).log()).sum()
    expected = -(1 + e2 / torch.log(torch.tensor(2.))) / 2
    torch.testing.assert_close(MTO.entropy_loss(probs, masked), expected)
    m = small()
    patches = m.backbone.mask_token.detach().expand(1, 16, -1).clone()
    assert m.singularity_loss(patches, torch.zeros(1, 16, dtype=torch.bool)) > 0.99


def test_all_terms_train():
    torch.manual_seed(0)
    m = small()
    losses = m.loss(torch.randn(2, 3, 32, 32))
    assert set(losses) == {'loss_rec', 'loss_spa', 'loss_e', 'loss_r'}
    sum(losses.values()).backward()
    assert m.backbone.mask_token.grad is not None and m.backbone.mask_token.grad.abs().sum() > 0


def test_bad_inputs():
    with pytest.raises(ValueError, match='mask_token=True'):
        small(backbone=dict(type='mmmask.MaskedViT', img_size=32, patch_size=8,
                            arch=dict(embed_dims=32, num_layers=2, num_heads=4,
                                      feedforward_channels=64)))
    with pytest.raises(ValueError, match='token generator'):
        small(mask_generator=dict(type='mmmask.DoubleMasking')).loss(torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError, match='img_size'):
        small().loss(torch.randn(2, 3, 48, 48))


def test_toy_config_train_step():
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.structures import DataSample

    from mmmask.apis.model_inputs import load_config
    cfg = load_config(TOY)
    model = MODELS.build(cfg.model)
    model.init_weights()
    ow = build_optim_wrapper(model, cfg.optim_wrapper)
    data = dict(inputs=torch.randint(0, 255, (4, 3, 32, 32), dtype=torch.uint8),
                data_samples=[DataSample() for _ in range(4)])
    out = model.train_step(data, ow)
    assert torch.isfinite(out['loss']) and 'loss_spa' in out
