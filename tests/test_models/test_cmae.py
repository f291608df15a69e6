"""CMAE (2-D Point-CMAE, ACCV'24): parity of the co-masked contrast and of the decoder blocks with
Amazingren/Point-CMAE (tests/data/parity/point_cmae), masks, configs, errors."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

from mmmask.models.masking import sample_from_mask
from mmmask.models.selfsup.cmae import (CMAEDecoder, comasked_consistency,
                                        convert_point_cmae_decoder)
from mmmask.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FIXTURES = osp.join(REPO, 'tests', 'data', 'parity', 'point_cmae')
TOY = osp.join(REPO, 'configs', 'cmae', 'cmae_vit-tiny-p8_1xb64-30e_toy-pretrain.py')
PAPER = osp.join(REPO, 'configs', 'cmae', 'cmae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py')


def test_contrast_parity_all_pairs():
    """The official lines 294-314 (all-pairs broadcast), at the fixture's own G and C."""
    fx = torch.load(osp.join(FIXTURES, 'pcmae_contrast.pt'), weights_only=True)
    inp, out = fx['inputs'], fx['outputs']
    f1 = inp['de_feats1'].clone().requires_grad_()
    f2 = inp['de_feats2'].clone().requires_grad_()
    # decoder layout [visible (ascending), masked (ascending)] = sample_from_mask's order
    s1, s2 = sample_from_mask(inp['mask1']), sample_from_mask(inp['mask2'])
    loss, ex = comasked_consistency(f1, s1.ids_restore, f2, s2.ids_restore,
                                    inp['mask1'] & inp['mask2'], mode='all_pairs')
    tol = dict(atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(ex['feats1'], out['de_feats_out1'], **tol)
    torch.testing.assert_close(ex['feats2'], out['de_feats_out2'], **tol)
    torch.testing.assert_close(ex['cos_sim'], out['cos_sim'], **tol)
    torch.testing.assert_close(loss, out['loss_contras'], **tol)
    loss.backward()
    torch.testing.assert_close(f1.grad, out['grad_de_feats1'], **tol)
    torch.testing.assert_close(f2.grad, out['grad_de_feats2'], **tol)
    co = inp['mask1'] & inp['mask2']
    # rows of branch 1 outside the co-mask get no gradient (official quirk)
    non_co = ~co.gather(1, torch.argsort(s1.ids_restore, 1))  # in decoder layout
    assert f1.grad[non_co].abs().max() == 0


def test_contrast_matched_form():
    B, L, C = 2, 10, 6
    f1, f2 = torch.randn(B, L, C), torch.randn(B, L, C)
    ids = torch.arange(L).expand(B, -1)
    co = torch.rand(B, L) < 0.5
    co[:, 0] = True
    loss, _ = comasked_consistency(f1, ids, f2, ids, co, mode='matched')
    cos = torch.nn.functional.cosine_similarity(f1, f2, dim=-1)
    torch.testing.assert_close(loss, (1 - cos)[co].mean())
    same, _ = comasked_consistency(f1, ids, f1, ids, co, mode='matched')
    assert same.abs() < 1e-6
    with pytest.raises(ValueError):
        comasked_consistency(f1, ids, f2, ids, co, mode='diag')


def test_decoder_parity():
    """CMAEDecoder's blocks = Point-CMAE's TransformerDecoder (pos before every block, no qkv
    bias, LN eps 1e-5), final norm on the last N tokens."""
    fx = torch.load(osp.join(FIXTURES, 'pcmae_decoder_tiny.pt'), weights_only=True)
    kw = fx['meta']['ctor_kwargs']
    dec = CMAEDecoder(num_patches=16, patch_size=1, embed_dim=kw['embed_dim'],
                      decoder_embed_dim=kw['embed_dim'], decoder_depth=kw['depth'],
                      decoder_num_heads=kw['num_heads'], drop_path_rate=kw['drop_path_rate'])
    missing, unexpected = dec.load_state_dict(convert_point_cmae_decoder(fx['state_dict']),
                                              strict=False)
    assert not unexpected
    assert set(missing) == {'mask_token', 'decoder_pos_embed', 'decoder_embed.weight',
                            'decoder_embed.bias', 'decoder_pred.weight', 'decoder_pred.bias'}
    dec.eval()
    feats = dec.forward_blocks(fx['inputs']['full_x'], fx['inputs']['pos_full'])
    n = fx['inputs']['return_token_num']
    tol = dict(atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(feats, fx['outputs']['de_feats'], **tol)
    torch.testing.assert_close(dec.norm(feats[:, -n:]), fx['outputs']['x_rec'], **tol)


def toy_model(**over):
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(TOY)
    for k, v in over.items():
        cfg.model[k] = v
    model = MODELS.build(cfg.model)
    model.init_weights()
    return cfg, model


def toy_batch(n=4):
    from mmpretrain.structures import DataSample
    return dict(inputs=torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8),
                data_samples=[DataSample() for _ in range(n)])


@pytest.mark.parametrize('mode', ['all_pairs', 'matched'])
def test_toy_config_train_step(mode):
    torch.manual_seed(0)
    cfg, model = toy_model(contrast_mode=mode)
    assert model.neck is not model.neck2
    assert not torch.equal(model.neck.mask_token, model.neck2.mask_token)
    ow = build_optim_wrapper(model, cfg.optim_wrapper)
    out = model.train_step(toy_batch(), ow)
    assert {'loss', 'loss_rec1', 'loss_rec2', 'loss_contrast', 'comask_cos'} <= set(out)
    assert all(torch.isfinite(v) for v in out.values())
    # both branches and both cls tokens get gradient
    data = model.data_preprocessor(toy_batch(), True)
    ow.zero_grad()
    losses = model.loss(data['inputs'])
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    for p in (model.backbone.cls_token, model.cls_token2, model.neck.mask_token,
              model.neck2.mask_token):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_masks_and_shared_encoder():
    torch.manual_seed(0)
    _, model = toy_model()
    model.eval()
    img = torch.randn(3, 3, 32, 32)
    res = model.forward_train(img)
    pair = res['pair']
    assert pair.first.mask.sum(1).eq(12).all() and pair.second.mask.sum(1).eq(12).all()
    assert not torch.equal(pair.first.mask, pair.second.mask)
    assert torch.equal(pair.co_mask, pair.first.mask & pair.second.mask)
    # the batched two-branch encoder = MaskedViT.forward_masked per branch (branch 1's cls)
    lat1, _ = model.encode(img, [pair.first, pair.second])
    ref = model.backbone.forward_masked(img, ids_keep=pair.first.ids_keep).tokens
    torch.testing.assert_close(lat1, ref, atol=1e-5, rtol=1e-5)
    assert res['preds'][0].shape == (3, 16, 8 * 8 * 3)


def test_bad_generator():
    _, model = toy_model(mask_generator=dict(type='mmmask.RandomMasking', ratio=0.75))
    with pytest.raises(ValueError, match='DoubleMasking'):
        model.forward_train(torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError, match='contrast_mode'):
        toy_model(contrast_mode='diag')


def test_paper_config_builds():
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(PAPER)
    assert cfg.model.mask_generator.generator.ratio == 0.75
    model = MODELS.build(cfg.model)
    assert model.backbone.embed_dims == 768
