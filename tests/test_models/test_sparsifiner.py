"""Sparsifiner (CVPR 2023): parity with the official model on every fixture of
tests/data/parity/sparsifiner/README.md (through our converter), the mask-sparsity identity,
phase semantics, losses, MHSA FLOPs, converter/CLI and bad inputs."""
import json
import math
import os.path as osp
import subprocess
import sys

import pytest
import torch

from mmmask.engine.hooks.sparsifiner_hook import SparsifinerClassifier
from mmmask.models.backbones.sparsifiner import (PrunedMaskedBias, Sparsifiner,
                                                 SparsifinerConnectivity, mhsa_flops)
from mmmask.models.converters.common import ConversionError
from mmmask.models.converters.sparsifiner import convert_sparsifiner, sparsifiner_arch_of
from mmmask.models.layers.attention_bias import MaskedBias
from mmmask.utils import register_all_modules

# mmpretrain classifiers built here resolve their default data preprocessor in the current scope
pytestmark = pytest.mark.usefixtures('mmpretrain_scope')

register_all_modules()

FIX = osp.join(osp.dirname(__file__), '..', 'data', 'parity', 'sparsifiner')
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ATOL = dict(atol=1e-5, rtol=1e-5)
FIXTURES = ['eval', 'train_phase1_recon', 'train_phase2', 'token_pruning']


def head(num_classes: int, in_channels: int) -> dict:
    return dict(type='mmpretrain.VisionTransformerClsHead', num_classes=num_classes,
                in_channels=in_channels, loss=dict(type='mmpretrain.CrossEntropyLoss'))


def load(name: str) -> dict:
    return torch.load(osp.join(FIX, f'sparsifiner_{name}.pt'), weights_only=False)


def backbone_cfg_of(meta: dict) -> dict:
    """mmmask.Sparsifiner kwargs equivalent to the fixture's official constructor + cfg."""
    kw, spar = meta['ctor_kwargs'], meta['cfg_effective_subset']['SPAR']
    return dict(
        type='mmmask.Sparsifiner',
        arch=dict(embed_dims=kw['embed_dim'], num_layers=kw['depth'], num_heads=kw['num_heads'],
                  feedforward_channels=kw['embed_dim'] * kw['mlp_ratio']),
        img_size=kw['img_size'], patch_size=kw['patch_size'],
        attn_keep_rate=kw['attn_keep_rate_list'], reduce_n_factor=kw['reduce_n_factor'],
        reduce_c_factor=kw['reduce_c_factor'], share_inout_proj=kw['share_inout_proj'],
        basis_threshold=spar['BASIS_THRESHOLD'], coef_topk=spar['BASIS_COEF']['TOPK'],
        token_keep_rate=kw['token_keep_rate_list'],
        token_pruning_loc=[i for i, f in enumerate(kw['token_pruning_loc_indicator']) if f],
        prune_attn_rows=spar['PRUNE_ATTN_MATRIX_ROW'])


def classifier_of(fix: dict, phase: int) -> SparsifinerClassifier:
    model = SparsifinerClassifier(
        backbone=backbone_cfg_of(fix['meta']),
        head=head(fix['meta']['ctor_kwargs']['num_classes'],
                  fix['meta']['ctor_kwargs']['embed_dim']),
        phase=phase)
    missing, unexpected = model.load_state_dict(convert_sparsifiner(fix['state_dict']),
                                                strict=True)
    assert not missing and not unexpected
    return model


@pytest.fixture(scope='module', params=FIXTURES)
def case(request):
    name = request.param
    fix = load(name)
    model = classifier_of(fix, phase=1 if 'recon' in name else 2)
    model.train('train' in name)
    model.backbone.record_dense(True)
    with torch.no_grad():
        outs, det = model.backbone.forward_details(fix['inputs']['img'],
                                                   stats=not model.training)
        logits = model.head(outs)
    return name, fix, det, logits


def test_parity_outputs(case):
    """Logits (head on the normed CLS token) and the normed patch tokens."""
    name, fix, det, logits = case
    torch.testing.assert_close(logits, fix['outputs']['x'], **ATOL)
    torch.testing.assert_close(det['patch_tokens'], fix['outputs']['features'], **ATOL)


def test_parity_per_layer(case):
    """Coefficients, approximation, connectivity mask (exact), used and dense attention, token
    masks (exact) of every layer."""
    name, fix, det, _ = case
    out = fix['outputs']
    for layer in range(len(out['attn_mask_list'])):
        coef, approx = det['basis_coef'][layer], det['approx_attn'][layer]
        ref_coef, ref_approx = out['basis_coef_list'][layer], out['approx_attn_list'][layer]
        prev = out['token_mask_list'][layer - 1] if layer else None
        if name == 'token_pruning' and prev is not None:
            # README: rows of pruned queries have q = 0, their top-k is implementation-defined
            rows = prev[:, None, :, None].expand_as(coef)
            coef, ref_coef = coef * rows, ref_coef * rows
            rows = prev[:, None, :, None].expand_as(approx)
            approx, ref_approx = approx * rows, ref_approx * rows
        torch.testing.assert_close(coef, ref_coef, **ATOL)
        torch.testing.assert_close(approx, ref_approx, **ATOL)
        assert torch.equal(det['attn_mask'][layer].float(), out['attn_mask_list'][layer])
        torch.testing.assert_close(det['attn'][layer], out['masked_attn_list'][layer], **ATOL)
        torch.testing.assert_close(det['unmasked_attn'][layer], out['unmasked_attn_list'][layer],
                                   **ATOL)
        ref_tm = out['token_mask_list'][layer]
        if ref_tm is None:
            assert det['token_mask'][layer] is None
        else:
            assert torch.equal(det['token_mask'][layer], ref_tm)


def test_parity_sparsity_scalars(case):
    name, fix, det, _ = case
    if 'attn_mask_sparsity' not in fix['outputs']:
        pytest.skip('training fixtures carry no sparsity scalars')
    for key in ('basis_sparsity', 'basis_coef_sparsity', 'attn_mask_sparsity'):
        torch.testing.assert_close(det[key], fix['outputs'][key].float(), atol=1e-6, rtol=0)


def test_phase1_attention_is_dense_and_phase2_masked(case):
    """Phase-1 training attends densely (mask still computed); otherwise the used attention is
    zero outside the mask."""
    name, fix, det, _ = case
    for attn, dense, keep in zip(det['attn'], det['unmasked_attn'], det['attn_mask']):
        if name == 'train_phase1_recon':
            torch.testing.assert_close(attn, dense)
        else:
            assert (attn[~keep] == 0).all()


def test_mask_sparsity_identity_fixture():
    """Eval mask sparsity = 1 - ((N-1)·ceil(0.25·N) + N) / N² (dense CLS row), N = 37."""
    fix = load('eval')
    n = 37
    expected = 1 - ((n - 1) * math.ceil(0.25 * n) + n) / n**2
    assert abs(fix['outputs']['attn_mask_sparsity'].item() - expected) < 1e-6
    model = classifier_of(fix, phase=2).eval()
    with torch.no_grad():
        _, det = model.backbone.forward_details(fix['inputs']['img'], stats=True)
    assert abs(det['attn_mask_sparsity'].item() - expected) < 1e-6


def test_mask_sparsity_identity_sparsifiner_s():
    """Sparsifiner-S at 224: N = 197, budget 50 → 1 - (196·50 + 197) / 197² = 0.7424 (notes §6);
    r = 197 // 6 = 32, reduced channels 32 as in the official model."""
    torch.manual_seed(0)
    model = Sparsifiner(arch='sparsifiner-s').eval()
    pred = model.predictors[0]
    assert (pred.reduced_n, pred.reduced_c, pred.attn_budget) == (32, 32, 50)
    with torch.no_grad():
        _, det = model.forward_details(torch.randn(1, 3, 224, 224), stats=True)
    expected = 1 - (196 * 50 + 197) / 197**2
    assert abs(expected - 0.7424) < 1e-4
    assert abs(det['attn_mask_sparsity'].item() - expected) < 1e-6
    assert all(int(k[0, 0, 1:].sum(-1).unique().item()) == 50 for k in det['attn_mask'])


def test_official_keys_sparsifiner_s():
    """All 224 official Sparsifiner-S keys convert to exactly the mmmask model's keys/shapes."""
    with open(osp.join(FIX, 'keys_sparsifiner_s.json')) as f:
        ref = json.load(f)
    official = {k: torch.empty(v['shape']) for k, v in ref['keys'].items()}
    converted = convert_sparsifiner(official, require_predictor=True)
    model = SparsifinerClassifier(
        backbone=dict(type='mmmask.Sparsifiner', arch='sparsifiner-s'),
        head=head(1000, 384))
    mine = model.state_dict()
    assert set(converted) == set(mine)
    assert all(tuple(converted[k].shape) == tuple(mine[k].shape) for k in mine)
    assert sum(p.numel() for p in model.parameters()) == ref['num_parameters_unique']
    assert sparsifiner_arch_of(converted) == dict(
        embed_dims=384, num_layers=12, feedforward_channels=1536, num_tokens=197, num_heads=6,
        reduced_n=32)


def test_recon_loss_matches_official_formula():
    """Phase-1 loss: 0.01 · Σ_l MSE_sum(A^_l, A_l[:, :, 1:]) / L, on the recon fixture (official
    target = frozen teacher attention = the dense attention of the not-yet-updated backbone)."""
    fix = load('train_phase1_recon')
    out = fix['outputs']
    ref = sum(((a - d[:, :, 1:]) ** 2).sum() for a, d in
              zip(out['approx_attn_list'], out['unmasked_attn_list'])) / 2 * 0.01
    model = classifier_of(fix, phase=1).train()
    _, det = model.backbone.forward_details(fix['inputs']['img'])
    loss = model.recon_loss(det['approx_attn'], det['attn'])
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-7)
    loss.backward()
    for name, p in model.named_parameters():
        if '.bias_provider.' in name:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert not p.requires_grad and p.grad is None, name


def test_phase2_classifier_losses_with_teacher():
    """Phase 2: CE + 0.5 KL(student, teacher) + 0.5 MSE(tokens); a dense teacher with the same
    weights differs only through the masks; predictors frozen."""
    from mmpretrain.structures import DataSample
    fix = load('eval')
    kw = fix['meta']['ctor_kwargs']
    teacher = dict(type='mmpretrain.ImageClassifier', backbone=dict(
        type='mmpretrain.VisionTransformer', arch=backbone_cfg_of(fix['meta'])['arch'],
        img_size=48, patch_size=8, out_type='raw'), head=head(10, 48),
        data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor'))
    model = SparsifinerClassifier(backbone=backbone_cfg_of(fix['meta']), teacher=teacher,
                                  head=head(10, kw['embed_dim']))
    converted = convert_sparsifiner(fix['state_dict'])
    model.load_state_dict(converted)
    model.teacher.load_state_dict({k: v for k, v in converted.items()
                                   if '.bias_provider.' not in k})
    model.train()
    img = fix['inputs']['img']
    samples = [DataSample().set_gt_label(i) for i in (3, 7)]
    losses = model.loss(img, samples)
    assert set(losses) == {'loss_cls', 'loss_cls_distill', 'loss_token_distill'}
    t_logits, t_tokens = model.teacher_outputs(img)
    s_logits = fix['outputs']['x']
    kl = (t_logits.softmax(-1) * (t_logits.log_softmax(-1) - s_logits.log_softmax(-1))).sum() / 2
    torch.testing.assert_close(losses['loss_cls_distill'], 0.5 * kl, **ATOL)
    mse = ((fix['outputs']['features'] - t_tokens) ** 2).mean()
    torch.testing.assert_close(losses['loss_token_distill'], 0.5 * mse, **ATOL)
    assert losses['loss_token_distill'] > 0  # the masks change the tokens
    sum(losses.values()).backward()
    for name, p in model.named_parameters():
        assert (p.grad is None) == ('.bias_provider.' in name), name
    assert all(p.grad is None for p in model.teacher.parameters())
    assert not any('teacher' in k for k in model.state_dict())


def test_phase_switch_on_model():
    model = SparsifinerClassifier(
        backbone=dict(type='mmmask.Sparsifiner', arch=dict(
            embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64), img_size=32,
            patch_size=8, reduce_n_factor=2, coef_topk=4),
        head=head(10, 32))
    assert model.phase == 2 and model.loss_weights['cls'] == 1.0
    with pytest.raises(ValueError, match='teacher'):
        model.set_phase(2, dict(cls_distill=0.5))
    model.set_phase(1, dict(cls=1.0))
    assert model.backbone.phase == 1 and model.loss_weights == dict(
        cls=1.0, cls_distill=0.0, token_distill=0.0, recon=1.0)
    assert all(p.recon for p in model.backbone.predictors)
    with pytest.raises(ValueError, match='phase 2'):
        model.set_phase(2, dict(cls_distill=0., token_distill=0., recon=1.0))
    with pytest.raises(ValueError, match='phase must be'):
        model.backbone.set_phase(3)


def test_eval_in_phase1_applies_masks():
    """Official: the reconstruction path (dense attention, raw basis) is training-only."""
    fix = load('eval')
    model = classifier_of(fix, phase=1).eval()
    with torch.no_grad():
        logits = model.head(model.backbone(fix['inputs']['img']))
    torch.testing.assert_close(logits, fix['outputs']['x'], **ATOL)


def test_provider_returns_masked_bias():
    torch.manual_seed(0)
    p = SparsifinerConnectivity(32, 2, num_tokens=17, reduce_n_factor=2, coef_topk=4).eval()
    q, k = torch.randn(2, 2, 17, 16), torch.randn(2, 2, 17, 16)
    bias = p(q=q, k=k)
    assert isinstance(bias, MaskedBias) and bias.keep.shape == (2, 2, 17, 17)
    assert bias.keep[:, :, 0].all() and (bias.keep[:, :, 1:].sum(-1) == 5).all()
    assert not bias.keep.requires_grad
    p.token_mask = torch.ones(2, 16, dtype=torch.bool)
    p.token_mask[:, :8] = False
    pruned = p(q=q, k=k)
    assert isinstance(pruned, PrunedMaskedBias)
    assert not pruned.keep[:, :, 1:, 1:9].any()  # pruned key columns never selected
    p.train()
    p.recon = True
    assert p(q=q, k=k) is None and 'approx_attn' in p.last


def test_mhsa_flops():
    """Dense = 4NC² + 2N²C per layer; the sparse attention products = kept mask entries · head
    width · 2, counted from a real forward; the sparse predictor uses the basis non-zeros;
    Sparsifiner-S at 224 (paper abstract: 48-69 % fewer MHSA FLOPs)."""
    cfg = dict(arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64),
               img_size=32, patch_size=8, reduce_n_factor=2, coef_topk=4)
    torch.manual_seed(0)
    model = Sparsifiner(**cfg).eval()
    flops = mhsa_flops(model, 32)
    n, c, h, d, rc, r = 17, 32, 2, 16, 8, 8
    assert flops['projections'] == 2 * 4 * n * c * c
    assert flops['dense_attention'] == 2 * 2 * n * n * c
    with torch.no_grad():
        _, det = model.forward_details(torch.randn(1, 3, 32, 32))
    kept = sum(int(k.sum()) for k in det['attn_mask'])  # over heads and layers
    assert flops['sparse_attention'] == kept * d * 2
    low_rank = 2 * n * h * d * rc + h * rc * n * r + h * (n - 1) * rc * r
    assert flops['predictor'] == 2 * (low_rank + h * (n - 1) * r * n)
    nnz = sum(int((p.basis() != 0).sum()) for p in model.predictors)
    assert flops['predictor_sparse'] == 2 * low_rank + h * (n - 1) * 4 * nnz / r
    assert flops['dense_mhsa'] == flops['projections'] + flops['dense_attention']
    torch.manual_seed(0)
    assert mhsa_flops(dict(type='mmmask.Sparsifiner', **cfg), 32) == flops
    torch.manual_seed(0)
    s = mhsa_flops(dict(arch='sparsifiner-s'), 224)
    assert s['dense_mhsa'] == 12 * (4 * 197 * 384**2 + 2 * 197**2 * 384)
    assert abs(s['reduction_attention_no_predictor'] - (1 - (196 * 50 + 197) / 197**2)) < 1e-9
    assert 0.4 < s['reduction_attention'] < 0.55  # init basis (trunc-normal 0.02) ~32 % dense
    assert s['reduction_attention_dense_predictor'] < s['reduction_attention']
    assert 0 < s['reduction_mhsa'] < s['reduction_attention']
    with pytest.raises(ValueError, match='built for'):
        mhsa_flops(model, 64)


def test_converter_errors_and_cli(tmp_path):
    fix = load('eval')
    sd = dict(fix['state_dict'])
    with pytest.raises(ConversionError, match='dist_token'):
        convert_sparsifiner(dict(sd, dist_token=torch.zeros(1, 1, 48)))
    deit = {k: v for k, v in sd.items() if 'mask_predictor' not in k}
    assert not any('bias_provider' in k for k in convert_sparsifiner(deit))
    with pytest.raises(ConversionError, match='not an official Sparsifiner'):
        convert_sparsifiner(deit, require_predictor=True)
    src, dst = str(tmp_path / 'official.pth'), str(tmp_path / 'mmmask.pth')
    torch.save({'model': {f'module.{k}': v for k, v in sd.items()}}, src)
    subprocess.run([sys.executable, osp.join(REPO, 'tools', 'model_converters',
                                             'sparsifiner2mmmask.py'), src, dst,
                    '--require-predictor'], check=True, cwd=REPO, capture_output=True)
    converted = torch.load(dst, weights_only=False)['state_dict']
    assert converted.keys() == convert_sparsifiner(sd).keys()


def test_bad_inputs():
    with pytest.raises(ValueError, match='deit-small'):
        Sparsifiner(arch='huge')
    model = Sparsifiner(arch=dict(embed_dims=32, num_layers=1, num_heads=2,
                                  feedforward_channels=64), img_size=32, patch_size=8,
                        reduce_n_factor=2, coef_topk=4)
    with pytest.raises(ValueError, match='img_size'):
        model(torch.randn(1, 3, 48, 48))
    with pytest.raises(ValueError, match='coef_topk'):
        Sparsifiner(arch=dict(embed_dims=32, num_layers=1, num_heads=2, feedforward_channels=64),
                    img_size=32, patch_size=8, reduce_n_factor=4)
    with pytest.raises(ValueError, match='one value per layer'):
        Sparsifiner(arch='deit-tiny', attn_keep_rate=[0.25, 0.25])
    with pytest.raises(ValueError, match='CLS'):
        Sparsifiner(arch='deit-tiny', with_cls_token=False, out_type='featmap')
