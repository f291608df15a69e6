"""OPTIN (ICLR'24) units: masking, MAC accounting, the official scoring formulas, selection and
physical pruning on mmpretrain ViT / Swin and mmseg / mmdet Swin backbones."""
import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmmask.models.pruning.optin import (KLRescaler, OptinMasker, PrunableBlock,
                                         apply_soft_masks, classifier_logits_fn,
                                         count_model_macs, discover_blocks, greedy_select,
                                         head_macs, load_optin_pruned, manifold_distillation,
                                         masks_from_dict, masks_to_dict, measure_tokens,
                                         neuron_macs, optin_importance, optin_kl,
                                         optin_prune_model, patch_manifold_distillation,
                                         physically_prune, prunable_macs, random_select)

pytestmark = pytest.mark.usefixtures('mmpretrain_scope')


def tiny_vit(layers=3, heads=4, dims=32, ffn=48, seed=0):
    from mmpretrain.registry import MODELS
    torch.manual_seed(seed)
    return MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='VisionTransformer', img_size=32, patch_size=8,
                      arch=dict(embed_dims=dims, num_layers=layers, num_heads=heads,
                                feedforward_channels=ffn)),
        neck=None, head=dict(type='VisionTransformerClsHead', num_classes=10,
                             in_channels=dims))).eval()


def tiny_swin(seed=0):
    from mmpretrain.registry import MODELS
    torch.manual_seed(seed)
    return MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='SwinTransformer', img_size=64, window_size=4, out_indices=(1, ),
                      arch=dict(embed_dims=32, depths=[2, 2], num_heads=[2, 4])),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=64))).eval()


def prepared(model, x):
    blocks = discover_blocks(model)
    measure_tokens(blocks, classifier_logits_fn(model, x), x.shape[0])
    return blocks


def test_discovery_vit_swin_and_dense_backbones():
    blocks = discover_blocks(tiny_vit())
    assert [b.name for b in blocks] == [f'backbone.layers.{i}' for i in range(3)]
    assert all((b.num_heads, b.head_dim, b.hidden, b.window) == (4, 8, 48, False)
               for b in blocks)
    sw = discover_blocks(tiny_swin())
    assert [(b.num_heads, b.head_dim, b.hidden, b.window) for b in sw] == \
        [(2, 16, 128, True)] * 2 + [(4, 16, 256, True)] * 2
    from mmdet.registry import MODELS as DET
    from mmseg.registry import MODELS as SEG
    swin = dict(embed_dims=32, depths=[2, 2], num_heads=[2, 4], window_size=4, strides=(4, 2),
                out_indices=(0, 1))
    for reg, t in ((SEG, 'mmseg.SwinTransformer'), (DET, 'mmdet.SwinTransformer')):
        got = discover_blocks(reg.build(dict(type=t, **swin)))
        assert [(b.name, b.num_heads, b.window) for b in got] == [
            ('stages.0.blocks.0', 2, True), ('stages.0.blocks.1', 2, True),
            ('stages.1.blocks.0', 4, True), ('stages.1.blocks.1', 4, True)]
    with pytest.raises(ValueError, match='no prunable transformer block'):
        discover_blocks(torch.nn.Sequential(torch.nn.Linear(3, 3)))


def _capture(module, store, key):
    return module.register_forward_hook(lambda m, a, o: store.__setitem__(key, (a[0], o)))


@pytest.mark.parametrize('builder', [tiny_vit, tiny_swin])
def test_masking_one_unit_removes_exactly_its_contribution(builder):
    model = builder()
    x = torch.randn(2, 3, 64 if builder is tiny_swin else 32, 64 if builder is tiny_swin else 32)
    blocks = discover_blocks(model)
    b = blocks[1]
    seen = {}
    hs = [_capture(b.attn.proj, seen, 'proj'), _capture(b.fc2, seen, 'fc2')]
    with torch.no_grad():
        model(x, mode='tensor')
        base = dict(seen)
        masker = OptinMasker(blocks)
        h, n = 1, 5
        masker.head_masks[1][h] = 0
        with masker:
            model(x, mode='tensor')
        sl = slice(h * b.head_dim, (h + 1) * b.head_dim)
        inp, out = seen['proj']
        # only head h's slice of proj's input is zeroed, the others are untouched
        assert torch.equal(inp[..., sl], torch.zeros_like(inp[..., sl]))
        keep = torch.ones(inp.shape[-1], dtype=torch.bool)
        keep[sl] = False
        assert torch.allclose(inp[..., keep], base['proj'][0][..., keep])
        # the block's attention output loses exactly W_proj[:, slice] · head_h
        lost = F.linear(base['proj'][0][..., sl], b.attn.proj.weight[:, sl])
        assert torch.allclose(base['proj'][1] - out, lost, atol=1e-5)
        masker.reset()
        masker.neuron_masks[1][n] = 0
        with masker:
            model(x, mode='tensor')
        inp, out = seen['fc2']
        assert (inp[..., n] == 0).all() and torch.allclose(
            torch.cat([inp[..., :n], inp[..., n + 1:]], -1),
            torch.cat([base['fc2'][0][..., :n], base['fc2'][0][..., n + 1:]], -1))
        lost = base['fc2'][0][..., n:n + 1] * b.fc2.weight[:, n]
        assert torch.allclose(base['fc2'][1] - out, lost, atol=1e-5)
        # earlier blocks see nothing; hooks removed after the context
        assert torch.allclose(model(x, mode='tensor'), model(x, mode='tensor'))
    for h_ in hs:
        h_.remove()


def test_vit_mac_accounting_matches_mmengine_and_physical_pruning():
    model = tiny_vit()
    x = torch.randn(4, 3, 32, 32)
    blocks = prepared(model, x)
    assert blocks[0].attn_tokens == 17 and blocks[0].attn_context == 17
    # per-unit formula: 3·T·C·d + 2·T·N·d + T·d·C and 2·T·C
    assert head_macs(blocks[0]) == 3 * 17 * 32 * 8 + 2 * 17 * 17 * 8 + 17 * 8 * 32
    assert neuron_macs(blocks[0]) == 2 * 17 * 32
    head_keep = [torch.tensor([1, 0, 1, 0]).bool(), torch.zeros(4).bool(), torch.ones(4).bool()]
    g = torch.Generator().manual_seed(0)
    neuron_keep = [torch.rand(48, generator=g) > 0.5, torch.ones(48).bool(), torch.zeros(48).bool()]
    full = count_model_macs(model, x[:1])
    pruned = copy.deepcopy(model)
    report = physically_prune(discover_blocks(pruned), head_keep, neuron_keep)
    assert len(report['sliced_heads']) == 3 and not report['soft_heads']
    assert pruned.backbone.layers[0].attn.qkv.out_features == 3 * 2 * 8
    assert pruned.backbone.layers[1].attn.num_heads == 0
    assert pruned.backbone.layers[2].ffn.layers[1].in_features == 0
    after = count_model_macs(pruned, x[:1])
    removed = prunable_macs(blocks) - prunable_macs(blocks, head_keep, neuron_keep)
    assert removed > 0 and full - after == pytest.approx(removed, rel=0, abs=1e-6)
    # the sliced model computes what the masked one does (zero heads / zero neurons included)
    masker = OptinMasker(blocks)
    masker.set(head_keep, neuron_keep)
    with torch.no_grad(), masker:
        ref = model(x, mode='tensor')
    with torch.no_grad():
        assert torch.allclose(pruned(x, mode='tensor'), ref, atol=1e-5)
        soft = copy.deepcopy(model)
        apply_soft_masks(discover_blocks(soft), head_keep, neuron_keep)
        assert torch.allclose(soft(x, mode='tensor'), ref, atol=1e-6)


def test_swin_unit_macs_match_mmengine_by_module():
    from mmengine.analysis import FlopAnalyzer
    model = tiny_swin()
    x = torch.randn(1, 3, 64, 64)
    blocks = prepared(model, x)

    class Wrap(torch.nn.Module):

        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m(x, mode='tensor')

    an = FlopAnalyzer(Wrap(model), (x, ))
    an.unsupported_ops_warnings(False)
    by_mod = an.by_module()
    for b in blocks:
        assert by_mod[f'm.{b.name}.attn.w_msa'] == b.num_heads * head_macs(b)
        assert by_mod[f'm.{b.name}.ffn.layers'] == b.hidden * neuron_macs(b)
    # window attention: heads stay (zeroed), FFN neurons are sliced; outputs match the masks
    head_keep = [torch.tensor([1, 0]).bool()] * 2 + [torch.tensor([0, 1, 1, 0]).bool()] * 2
    neuron_keep = [torch.arange(b.hidden) % 3 > 0 for b in blocks]
    masker = OptinMasker(blocks)
    masker.set(head_keep, neuron_keep)
    with torch.no_grad(), masker:
        ref = model(x, mode='tensor')
    pruned = copy.deepcopy(model)
    rep = physically_prune(discover_blocks(pruned), head_keep, neuron_keep)
    assert len(rep['soft_heads']) == 4 and not rep['sliced_heads']
    with torch.no_grad():
        assert torch.allclose(pruned(x, mode='tensor'), ref, atol=1e-5)
    removed_neurons = sum(neuron_macs(b) * int((~neuron_keep[i]).sum())
                          for i, b in enumerate(blocks))
    assert count_model_macs(model, x) - count_model_macs(pruned, x) == removed_neurons


def test_manifold_distillation_and_kl_formulas():
    g = torch.Generator().manual_seed(3)
    t, s = torch.randn(2, 5, 6), torch.randn(2, 5, 6)
    got = manifold_distillation(t, s, num_samples=4, generator=torch.Generator().manual_seed(1))
    pick = torch.randperm(10, generator=torch.Generator().manual_seed(1))[:4]
    ft = F.normalize(t, dim=-1).reshape(10, 6)[pick]
    fs = F.normalize(s, dim=-1).reshape(10, 6)[pick]
    assert got == pytest.approx(float(((ft @ ft.T - fs @ fs.T)**2).sum()), rel=1e-6)
    assert manifold_distillation(t, t, generator=g) == 0
    assert manifold_distillation(t, s, 768, g, 'mean') == pytest.approx(
        float(manifold_distillation(t, s, 768, g, 'sum')) / 100, rel=1e-6)
    # patch variant: per token position, inter-sample Gram, batch mean
    pt, ps = F.normalize(t, dim=-1), F.normalize(s, dim=-1)
    ref = sum(((pt[:, p] @ pt[:, p].T) - (ps[:, p] @ ps[:, p].T)) for p in range(5)) / 5
    assert patch_manifold_distillation(t, s) == pytest.approx(float((ref**2).sum()), rel=1e-5)
    # KL(teacher‖student) summed, ×T², logits NOT divided by T (official quirk)
    a, b = torch.randn(3, 7), torch.randn(3, 7)
    p = a.softmax(1)
    ref = float((p * (a.log_softmax(1) - b.log_softmax(1))).sum() * 16)
    assert optin_kl(a, b, 4.0) == pytest.approx(ref, rel=1e-5)
    p = (a / 4).softmax(1)
    ref = float((p * ((a / 4).log_softmax(1) - (b / 4).log_softmax(1))).sum() * 16)
    assert optin_kl(a, b, 4.0, divide_by_temperature=True) == pytest.approx(ref, rel=1e-5)


def test_kl_rescaler_follows_official_rule():
    r = KLRescaler(10.)
    assert r(-3.0, -2.0) == -2.0 * 1  # |MD|>|KL| but ratio < λ: int(0.18 − 1) = 0 → ×1
    assert r(-500.0, -2.0) == -20.0  # log10(250) − 1 = 1.40 → ×10
    assert r.history == [1, 10]
    assert r(-1.0, -2.0) == pytest.approx(-2.0 * 5.5)  # |MD| < |KL|: mean factor, not stored
    assert r(-4.0, 0.0) == 0.0 and r.history == [1, 10]  # KL = 0: undefined ratio, mean used
    assert r(-1e6, -1e-3) == pytest.approx(-1e-3 * 1e8)  # 9 − 1 = 8
    assert KLRescaler(10.)(0.0, -1.0) == -1.0  # no history: factor 1


def test_importance_matches_hand_computation_and_decays():
    model = tiny_vit(layers=2, heads=2, ffn=8)
    x = torch.randn(3, 3, 32, 32)
    blocks = prepared(model, x)
    fwd = classifier_logits_fn(model, x)
    scores = optin_importance(blocks, fwd, md_samples=20, seed=5)
    assert [s.shape[0] for s in scores['head']] == [2, 2]
    assert [s.shape[0] for s in scores['neuron']] == [8, 8]
    assert all((s <= 0).all() for s in scores['head'] + scores['neuron'])
    # head 0 of block 0 by hand: MD on F1 (ln1 of block 1) and F2 (block 1 output), KL rescaled
    feats = {}
    hooks = [blocks[1].norm.register_forward_hook(lambda m, a, o: feats.__setitem__(1, o)),
             blocks[1].block.register_forward_hook(lambda m, a, o: feats.__setitem__(2, o))]
    with torch.no_grad():
        base_logits = fwd()
        base = dict(feats)
        masker = OptinMasker(blocks)
        masker.head_masks[0][0] = 0
        with masker:
            logits = fwd()
    for h in hooks:
        h.remove()
    g = torch.Generator().manual_seed(5)
    md = -float(manifold_distillation(base[1], feats[1], 20, g)) - float(
        manifold_distillation(base[2], feats[2], 20, g))
    kl = -float(optin_kl(base_logits, logits, 4.0))
    kl = KLRescaler(10.)(md, kl)
    assert float(scores['head'][0][0]) == pytest.approx((md + kl) * 0.5, rel=1e-5)
    # the language position ramp multiplies head h by geomspace(1, 10)[::-1][h]
    ramp = optin_importance(blocks, fwd, md_samples=20, seed=5, head_position_decay=10.,
                            neuron_position_decay=100.)
    assert float(ramp['head'][0][1]) == pytest.approx(float(scores['head'][0][1]) * 1.0, rel=1e-6)
    assert float(ramp['head'][0][0]) == pytest.approx(float(scores['head'][0][0]) * 10, rel=1e-6)
    assert float(ramp['neuron'][1][0]) == pytest.approx(float(scores['neuron'][1][0]) * 100,
                                                        rel=1e-6)
    # a head whose contribution is already zero is the least important unit (score 0)
    with torch.no_grad():
        blocks[0].attn.proj.weight[:, 16:32] = 0  # head 1 (head_dim 16)
    dead = optin_importance(blocks, fwd, md_samples=20)
    assert float(dead['head'][0][1]) == 0 and float(dead['head'][0][0]) < 0
    grouped = optin_importance(blocks, fwd, md_samples=20, neuron_group=3)
    assert [s.shape[0] for s in grouped['neuron']] == [3, 3]


def _fake_blocks(n_layers, heads, hidden, tokens=10, dims=16):
    out = []
    for i in range(n_layers):
        attn = torch.nn.Module()
        attn.qkv, attn.proj = torch.nn.Linear(dims, 3 * dims), torch.nn.Linear(dims, dims)
        attn.num_heads = heads
        out.append(PrunableBlock(name=f'b{i}', block=torch.nn.Module(), attn=attn,
                                 fc1=torch.nn.Linear(dims, hidden),
                                 fc2=torch.nn.Linear(hidden, dims), num_heads=heads,
                                 head_dim=dims // heads, window=False, attn_tokens=tokens,
                                 attn_context=tokens, ffn_tokens=tokens))
    return out


def _official_greedy(head_rank, neuron_rank, head_mac, neuron_mac, capacity):
    """main_prune.globalRankingLanguage, restated for uniform unit MACs."""
    best = 0
    for k in range(1, len(head_rank) + 1):
        imp = sum(-s for s, *_ in head_rank[:k])
        rem = capacity - head_mac * k
        m = 0
        while rem >= neuron_mac and m < len(neuron_rank):
            imp += -neuron_rank[m][0]
            m += 1
            rem -= neuron_mac
        if imp > best:
            best, hk, nk = imp, k, m
    return hk, nk


@pytest.mark.parametrize('budget', [0.3, 0.5, 0.7, 0.9])
def test_greedy_selection_matches_official_loop(budget):
    blocks = _fake_blocks(3, 4, 32)
    g = torch.Generator().manual_seed(int(budget * 10))
    scores = dict(head=[-torch.rand(4, generator=g, dtype=torch.float64) * 30 for _ in blocks],
                  neuron=[-torch.rand(32, generator=g, dtype=torch.float64) for _ in blocks])
    head_keep, neuron_keep, info = greedy_select(blocks, scores, budget)
    assert info['kept_macs'] <= budget * info['base_macs'] + 1e-6
    hr = sorted((float(scores['head'][i][h]), i, h) for i in range(3) for h in range(4))
    nr = sorted((float(scores['neuron'][i][n]), i, n) for i in range(3) for n in range(32))
    cap = budget * prunable_macs(blocks)
    k, m = _official_greedy(hr, nr, head_macs(blocks[0]), neuron_macs(blocks[0]), cap)
    if head_macs(blocks[0]) * k <= cap:  # the official loop may pick over-budget head counts
        assert (info['num_heads'], info['num_neuron_units']) == (k, m)
        want = torch.zeros(3, 4, dtype=torch.bool)
        for _, i, h in hr[:k]:
            want[i, h] = True
        assert torch.equal(torch.stack(head_keep), want)
    # random baseline at the same budget: within budget, fills it
    _, _, rinfo = random_select(blocks, budget, seed=1)
    assert budget * info['base_macs'] - neuron_macs(blocks[0]) <= rinfo['kept_macs'] \
        <= budget * info['base_macs']
    with pytest.raises(ValueError, match='budget'):
        greedy_select(blocks, scores, 1.5)


def test_prune_model_masks_roundtrip_and_load_pruned(tmp_path):
    model = tiny_vit()
    x = torch.randn(4, 3, 32, 32)
    res = optin_prune_model(model, x, budget=0.5, neuron_group=4, md_samples=64)
    assert res['info']['ratio'] <= 0.5
    blocks = discover_blocks(model)
    hk, nk = masks_from_dict(blocks, res['masks'])
    assert all(torch.equal(a, b) for a, b in zip(hk, res['head_keep']))
    assert all(torch.equal(a, b) for a, b in zip(nk, res['neuron_keep']))
    assert all(int(n.sum()) % 4 == 0 for n in nk)  # groups of 4 kept or dropped together
    pruned = copy.deepcopy(model)
    physically_prune(discover_blocks(pruned), hk, nk)
    path = str(tmp_path / 'p.pth')
    torch.save(dict(state_dict=pruned.state_dict(), meta=dict(optin=res['masks'])), path)
    fresh = tiny_vit(seed=1)
    load_optin_pruned(fresh, path)
    with torch.no_grad():
        assert torch.allclose(fresh(x, mode='tensor'), pruned(x, mode='tensor'))
    bad = masks_to_dict(blocks, hk, nk)
    bad['blocks'][0]['num_heads'] = 8
    with pytest.raises(ValueError, match='heads'):
        masks_from_dict(blocks, bad)
    with pytest.raises(TypeError, match='unknown OPTIN settings'):
        optin_prune_model(model, x, budget=0.5, lamda=3)
    assert math.isfinite(float(np.sum([s.sum() for s in res['scores']['head']])))


def test_prunes_swin_backbone_of_mmseg_segmentor():
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS as SEG
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmseg'):
        seg = SEG.build(dict(
            type='EncoderDecoder', data_preprocessor=dict(type='SegDataPreProcessor'),
            backbone=dict(type='SwinTransformer', embed_dims=32, depths=[2, 2],
                          num_heads=[2, 4], window_size=4, strides=(4, 2), out_indices=(1, )),
            decode_head=dict(type='FCNHead', in_channels=64, in_index=0, channels=16,
                             num_convs=1, num_classes=5),
            test_cfg=dict(mode='whole'))).eval()
    x = torch.randn(2, 3, 64, 64)
    res = optin_prune_model(seg, x, 0.5, neuron_group=8, md_samples=64)
    assert 0.45 < res['info']['ratio'] <= 0.5
    assert [b.name for b in res['blocks']][0] == 'backbone.stages.0.blocks.0'
    # the KL term sees the segmentor's per-pixel scores: masking a unit changes them
    fwd = classifier_logits_fn(seg, x)
    masker = OptinMasker(res['blocks'])
    masker.set(res['head_keep'], res['neuron_keep'])
    with torch.no_grad():
        base = fwd()
        with masker:
            pruned = fwd()
    assert base.shape == (2, 5, 64, 64) and not torch.allclose(base, pruned)
