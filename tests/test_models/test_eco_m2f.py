"""ECO-M2F: parity of the gated early-exit pixel decoder with the official code (fixtures in
tests/data/parity/eco_m2f), converter, gate loss (with the exit-axis fix), exits and statistics."""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import ConfigDict

from mmmask.models.converters import (ConversionError, convert_eco_m2f,
                                      convert_eco_m2f_pixel_decoder)
from mmmask.models.converters.common import check_complete
from mmmask.models.layers import (EarlyExitMSDeformAttnPixelDecoder, ExitGate, eco_gate_loss,
                                  eco_gate_targets)

DATA = osp.join(osp.dirname(osp.dirname(__file__)), 'data', 'parity', 'eco_m2f')
ATOL, RTOL = 5e-5, 1e-4


def pixel_decoder(in_channels=(8, 16, 24, 32), heads=2, ffn=32, out_channels=32, **kwargs):
    """Our decoder with the fixture's (or Swin-T's) hyper-parameters."""
    enc = ConfigDict(
        num_layers=6,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=256, num_heads=heads, num_levels=3, num_points=4,
                               batch_first=True, dropout=0.0),
            ffn_cfg=dict(embed_dims=256, feedforward_channels=ffn, num_fcs=2, ffn_drop=0.0,
                         act_cfg=dict(type='ReLU', inplace=True))))
    return EarlyExitMSDeformAttnPixelDecoder(
        in_channels=list(in_channels), strides=[4, 8, 16, 32], feat_channels=256,
        out_channels=out_channels, num_outs=3, encoder=enc,
        positional_encoding=dict(num_feats=128, normalize=True), **kwargs)


@pytest.fixture(scope='module')
def fx():
    return torch.load(osp.join(DATA, 'pixel_decoder_exits.pt'), weights_only=True)


@pytest.fixture(scope='module')
def loaded(fx):
    model = pixel_decoder().eval()
    model.load_state_dict(convert_eco_m2f_pixel_decoder(fx['state_dict']), strict=True)
    return model


def run(model, case):
    feats = [case[k] for k in ('res2', 'res3', 'res4', 'res5')]
    with torch.no_grad():
        mask_feature, multi_scale = model(feats)
    return mask_feature, multi_scale


def check_case(out, ref):
    mask_feature, multi_scale = out
    torch.testing.assert_close(mask_feature, ref['mask_features'], atol=ATOL, rtol=RTOL)
    assert len(multi_scale) == len(ref['multi_scale_features']) == 3
    for ours, theirs in zip(multi_scale, ref['multi_scale_features']):
        torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize('k', [0, 1, 2, 3, 4])
def test_pixel_decoder_parity_single_image(fx, loaded, k):
    """Cases 0-4 (batch 1) exit at 2…6 layers: gate logits, exits and every output match."""
    case, ref = fx['inputs']['cases'][k], fx['outputs']['cases'][k]
    out = run(loaded, case)
    torch.testing.assert_close(loaded.last_gate_logits, ref['gates'], atol=ATOL, rtol=RTOL)
    assert loaded.last_exits.tolist() == [int(ref['i_exit'])] == [k + 2]
    check_case(out, ref)


def test_pixel_decoder_batch_per_image_exits(fx, loaded):
    """Case 5 (batch 2): our per-image argmax gives exits (4, 2), and each image's output equals
    running it alone — where the official flattened argmax ran all 6 layers for both."""
    case, ref = fx['inputs']['cases'][5], fx['outputs']['cases'][5]
    mask_feature, multi_scale = run(loaded, case)
    torch.testing.assert_close(loaded.last_gate_logits, ref['gates'], atol=ATOL, rtol=RTOL)
    assert loaded.last_exits.tolist() == [4, 2]
    assert loaded.exit_statistics()['mean_layers'] == 3.0
    for b in range(2):
        alone_mask, alone_ms = run(loaded, {k: v[b:b + 1] for k, v in case.items()})
        assert loaded.last_exits.tolist() == [[4, 2][b]]
        torch.testing.assert_close(mask_feature[b:b + 1], alone_mask, atol=1e-5, rtol=1e-5)
        for ours, alone in zip(multi_scale, alone_ms):
            torch.testing.assert_close(ours[b:b + 1], alone, atol=1e-5, rtol=1e-5)
    # and the official result (6 layers for both) differs from ours
    assert not torch.allclose(mask_feature, ref['mask_features'], atol=1e-3)


def test_pixel_decoder_official_batch_argmax(fx):
    """``official_batch_argmax=True`` reproduces the released flattened argmax: i_exit 7 → 6."""
    model = pixel_decoder(official_batch_argmax=True).eval()
    model.load_state_dict(convert_eco_m2f_pixel_decoder(fx['state_dict']), strict=True)
    case, ref = fx['inputs']['cases'][5], fx['outputs']['cases'][5]
    out = run(model, case)
    assert int(ref['i_exit']) == 7
    assert model.last_exits.tolist() == [6, 6]
    check_case(out, ref)
    for k in range(5):  # identical to the per-image argmax at batch 1
        run(model, fx['inputs']['cases'][k])
        assert model.last_exits.tolist() == [k + 2]


def test_fixed_and_full_modes(fx, loaded):
    """'fixed' k reproduces the fixture case whose gate chose k; 'full' = 6 layers."""
    try:
        for k in range(5):
            loaded.set_exit_mode('fixed', k + 2)
            out = run(loaded, fx['inputs']['cases'][k])
            assert loaded.last_exits.tolist() == [k + 2]
            check_case(out, fx['outputs']['cases'][k])
        loaded.set_exit_mode('full')
        out = run(loaded, fx['inputs']['cases'][4])
        check_case(out, fx['outputs']['cases'][4])
        with pytest.raises(ValueError, match='not one of'):
            loaded.set_exit_mode('fixed', 7)
        with pytest.raises(ValueError, match='training mode'):
            loaded.set_exit_mode('sample')
    finally:
        loaded.set_exit_mode('gated')


def test_sampled_exits_follow_weights():
    """Step A: one exit per iteration, drawn ∝ weights (default: the depths 2…6)."""
    torch.manual_seed(0)
    model = pixel_decoder(in_channels=(8, 16, 24, 32)).train()
    feats = [torch.randn(2, c, 32 // s, 32 // s) for c, s in zip((8, 16, 24, 32), (1, 2, 4, 8))]
    counts = {e: 0 for e in model.exits}
    gate = model.gate
    for _ in range(200):
        exits = model.choose_exits(gate(torch.randn(2, 3, 256)))
        assert exits[0] == exits[1]
        counts[int(exits[0])] += 1
    assert counts[6] > counts[2] > 0
    model.exit_sampling_weights = [0, 0, 1, 0, 0]
    mask_feature, _ = model(feats)
    assert model.last_exits.tolist() == [4, 4] and mask_feature.requires_grad
    with pytest.raises(ValueError, match='exit_sampling_weights'):
        pixel_decoder(exit_sampling_weights=[1, 2])


def test_gate():
    gate = ExitGate(16, num_gates=4)
    assert gate.fc.out_features == 5 and float(gate.fc.bias.abs().sum()) == 0
    tokens = torch.randn(3, 7, 16)
    torch.testing.assert_close(gate(tokens), tokens.mean(1) @ gate.fc.weight.t())


def test_gate_loss_exit_axis():
    """u_k = q_k − β·k, softmax over exits (dim 1); the official dim=0 differs and is constant
    at batch 1."""
    q = torch.tensor([[0.50, 0.60, 0.62, 0.63, 0.63], [0.9, 0.9, 0.9, 0.9, 0.9]])
    logits = torch.randn(2, 5, requires_grad=True)
    exits = [2, 3, 4, 5, 6]
    beta = 0.02
    u = q - beta * torch.tensor(exits, dtype=torch.float)
    targets = eco_gate_targets(q, beta, exits)
    torch.testing.assert_close(targets, torch.softmax(u, dim=1))
    torch.testing.assert_close(targets.sum(1), torch.ones(2))
    # β·(1…5) as in the official code gives the same targets (softmax is shift-invariant)
    torch.testing.assert_close(targets, torch.softmax(q - beta * torch.arange(1., 6.), dim=1))
    loss = eco_gate_loss(logits, q, beta, exits)
    expected = ((torch.softmax(logits, 1) - torch.softmax(u, 1))**2).mean()
    torch.testing.assert_close(loss, expected)
    official = ((torch.softmax(logits, 0) - torch.softmax(u, 0))**2).mean()
    assert not torch.allclose(loss, official)
    loss.backward()
    assert logits.grad.abs().sum() > 0
    # the official batch-axis form is constant (zero) at batch 1; ours is not
    one = torch.randn(1, 5)
    assert float(((torch.softmax(one, 0) - torch.softmax(u[:1], 0))**2).mean()) == 0.0
    assert float(eco_gate_loss(one, q[:1], beta, exits)) > 0
    # a large β moves the target mass to the shallowest exit
    assert eco_gate_targets(q, 1.0, exits).argmax(1).tolist() == [0, 0]
    with pytest.raises(ValueError, match='derived dataset'):
        eco_gate_targets(q[:, :4], beta, exits)


# ---------------------------------------------------------------------------- converter
def test_converter_swin_t_pixel_decoder_keys():
    """Every key of the Swin-T pixel decoder maps onto our decoder with the right shape."""
    with open(osp.join(DATA, 'keys_pixel_decoder_swin_t.json')) as f:
        spec = json.load(f)
    official = {k: torch.empty(shape) for k, shape, _ in spec['keys']}
    assert len(official) == spec['num_keys'] == 119
    ours = pixel_decoder(in_channels=(96, 192, 384, 768), heads=8, ffn=1024, out_channels=256)
    converted = convert_eco_m2f_pixel_decoder(official)
    assert len(converted) == len(official)
    check_complete(converted, ours.state_dict(), 'EarlyExitMSDeformAttnPixelDecoder (Swin-T)')
    assert set(converted) == set(ours.state_dict())
    assert sum(v.numel() for v in converted.values()) == spec['num_parameters']
    # the whole-checkpoint converter adds the mmdet prefix
    full = convert_eco_m2f({'sem_seg_head.pixel_decoder.' + k: v for k, v in official.items()})
    assert set(full) == {'panoptic_head.pixel_decoder.' + k for k in converted}


def test_converter_rejects_unknown_keys():
    with pytest.raises(ConversionError, match='not official ECO-M2F'):
        convert_eco_m2f_pixel_decoder({'transformer.encoder.gate.weight': torch.zeros(1)})


def test_converter_predictor_and_swin_to_mmdet_mask2former():
    """Detectron2 Mask2Former predictor + Swin keys cover an mmdet Mask2Former Swin-T model."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    cfg = Config.fromfile(osp.join(osp.dirname(osp.dirname(osp.dirname(__file__))), 'configs',
                                   'eco_m2f', 'eco-m2f_swin-t_8xb2-lsj-50e_coco-panoptic.py'))
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    ref = model.state_dict()
    official = {}
    # backbone: detectron2 Swin names
    for k, v in ref.items():
        if k.startswith('backbone.'):
            o = k.replace('backbone.stages.', 'backbone.layers.').replace(
                'patch_embed.projection', 'patch_embed.proj').replace('attn.w_msa.', 'attn.')
            o = o.replace('ffn.layers.0.0.', 'mlp.fc1.').replace('ffn.layers.1.', 'mlp.fc2.')
            official[o] = torch.empty_like(v)
    num_dec = cfg.model.panoptic_head.transformer_decoder.num_layers
    p = 'sem_seg_head.predictor.'
    for i in range(num_dec):
        for name, mod in (('self_attention_layers', 'self_attn'),
                          ('cross_attention_layers', 'multihead_attn')):
            for w, shape in (('in_proj_weight', (768, 256)), ('in_proj_bias', (768, )),
                             ('out_proj.weight', (256, 256)), ('out_proj.bias', (256, ))):
                official[f'{p}transformer_{name}.{i}.{mod}.{w}'] = torch.empty(shape)
            for w in ('weight', 'bias'):
                official[f'{p}transformer_{name}.{i}.norm.{w}'] = torch.empty(256)
        official[f'{p}transformer_ffn_layers.{i}.linear1.weight'] = torch.empty(2048, 256)
        official[f'{p}transformer_ffn_layers.{i}.linear1.bias'] = torch.empty(2048)
        official[f'{p}transformer_ffn_layers.{i}.linear2.weight'] = torch.empty(256, 2048)
        official[f'{p}transformer_ffn_layers.{i}.linear2.bias'] = torch.empty(256)
        for w in ('weight', 'bias'):
            official[f'{p}transformer_ffn_layers.{i}.norm.{w}'] = torch.empty(256)
    for w in ('weight', 'bias'):
        official[f'{p}decoder_norm.{w}'] = torch.empty(256)
    official[f'{p}query_feat.weight'] = torch.empty(100, 256)
    official[f'{p}query_embed.weight'] = torch.empty(100, 256)
    official[f'{p}level_embed.weight'] = torch.empty(3, 256)
    official[f'{p}class_embed.weight'] = torch.empty(134, 256)
    official[f'{p}class_embed.bias'] = torch.empty(134)
    for j in range(3):
        official[f'{p}mask_embed.layers.{j}.weight'] = torch.empty(256, 256)
        official[f'{p}mask_embed.layers.{j}.bias'] = torch.empty(256)
    with open(osp.join(DATA, 'keys_pixel_decoder_swin_t.json')) as f:
        for k, shape, _ in json.load(f)['keys']:
            official['sem_seg_head.pixel_decoder.' + k] = torch.empty(shape)
    official['criterion.empty_weight'] = torch.empty(134)
    official['pixel_mean'] = torch.empty(3, 1, 1)
    converted = convert_eco_m2f(official)
    check_complete(converted, ref, 'mmdet Mask2Former + EarlyExitMSDeformAttnPixelDecoder')
    assert set(converted) == set(ref)


def test_patch_merging_reorder_matches_unfold():
    """The reordered detectron2 patch-merging weights give mmdet's PatchMerging the same output."""
    from mmmask.models.converters.eco_m2f import _unfold_order_norm, _unfold_order_weight
    torch.manual_seed(0)
    c = 4
    x = torch.randn(1, 6, 6, c)
    w = torch.randn(2 * c, 4 * c)
    g = torch.randn(4 * c)
    # detectron2: concat of (0::2, 0::2), (1::2, 0::2), (0::2, 1::2), (1::2, 1::2)
    xd = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
    ref = torch.nn.functional.layer_norm(xd, (4 * c, ), g) @ w.t()
    # mmdet: nn.Unfold(2, stride 2) on NCHW → channel-major (C, kh, kw) layout
    xu = torch.nn.functional.unfold(x.permute(0, 3, 1, 2), 2, stride=2).transpose(1, 2)
    ours = torch.nn.functional.layer_norm(xu, (4 * c, ), _unfold_order_norm(g)) @ \
        _unfold_order_weight(w).t()
    torch.testing.assert_close(ours.reshape(ref.shape), ref, atol=1e-5, rtol=1e-5)


def test_converter_tool_round_trip(fx, tmp_path):
    """tools/model_converters/eco_m2f2mmmask.py on an official-layout checkpoint (``model`` key)."""
    import subprocess
    import sys
    repo = osp.dirname(osp.dirname(osp.dirname(__file__)))
    src, dst = str(tmp_path / 'official.pth'), str(tmp_path / 'out' / 'mmmask.pth')
    torch.save({'model': {'sem_seg_head.pixel_decoder.' + k: v
                          for k, v in fx['state_dict'].items()}}, src)
    proc = subprocess.run([sys.executable, osp.join(repo, 'tools', 'model_converters',
                                                    'eco_m2f2mmmask.py'), src, dst],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = torch.load(dst, weights_only=True)['state_dict']
    model = pixel_decoder().eval()
    prefix = 'panoptic_head.pixel_decoder.'
    model.load_state_dict({k[len(prefix):]: v for k, v in out.items()}, strict=True)
    check_case(run(model, fx['inputs']['cases'][2]), fx['outputs']['cases'][2])
    torch.save({'model': {'sem_seg_head.unknown.weight': torch.zeros(1)}}, src)
    proc = subprocess.run([sys.executable, osp.join(repo, 'tools', 'model_converters',
                                                    'eco_m2f2mmmask.py'), src, dst],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and 'not official ECO-M2F' in proc.stderr


# ---------------------------------------------------------------------------- head / detector
TOY_A = osp.join(osp.dirname(osp.dirname(osp.dirname(__file__))), 'configs', 'eco_m2f',
                 'eco-m2f_r18-c32_1xb4-2k_toy-panoptic-64x64.py')


def toy_model(**model_overrides):
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    cfg = Config.fromfile(TOY_A)
    cfg.model.update(model_overrides)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def fake_samples(n, utilities=None):
    from mmdet.structures import DetDataSample
    samples = []
    for i in range(n):
        meta = dict(img_id=i, img_shape=(64, 64), ori_shape=(64, 64), pad_shape=(64, 64),
                    batch_input_shape=(64, 64), scale_factor=(1.0, 1.0))
        if utilities is not None:
            meta['exit_utilities'] = utilities[i]
        samples.append(DetDataSample(metainfo=meta))
    return samples


def test_gate_training_freezes_all_but_the_gate():
    torch.manual_seed(0)
    model = toy_model(train_gate_only=True).train()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ['panoptic_head.pixel_decoder.gate.fc.weight',
                         'panoptic_head.pixel_decoder.gate.fc.bias']
    assert not model.backbone.training and model.pixel_decoder.gate.training
    q = [[0.5, 0.6, 0.7, 0.7, 0.7], [0.9, 0.9, 0.9, 0.9, 0.9]]
    losses = model.loss(torch.randn(2, 3, 64, 64), fake_samples(2, q))
    assert set(losses) == {'loss_gate', 'gate_mean_exit'}
    losses['loss_gate'].backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None}
    assert grads == set(trainable)
    with pytest.raises(KeyError, match='LoadExitUtilities'):
        model.loss(torch.randn(1, 3, 64, 64), fake_samples(1))


def test_predict_records_exits():
    model = toy_model().eval()
    decoder = model.pixel_decoder
    decoder.set_exit_mode('fixed', 3)
    with torch.no_grad():
        out = model.predict(torch.randn(2, 3, 64, 64), fake_samples(2))
    assert [ds.metainfo['eco_exit'] for ds in out] == [3, 3]
    assert decoder.exit_statistics() == dict(mean_layers=3.0, counts={2: 0, 3: 2, 4: 0, 5: 0,
                                                                      6: 0})
    decoder.set_exit_mode('gated')
    with torch.no_grad():
        model.predict(torch.randn(2, 3, 64, 64), fake_samples(2))
    assert all(2 <= e <= 6 for e in decoder.last_exits.tolist())


def test_load_exit_utilities(tmp_path):
    from mmmask.datasets import LoadExitUtilities
    path = tmp_path / 'derived.json'
    path.write_text(json.dumps({'meta': {'exits': [2, 3, 4, 5, 6]},
                                'utilities': {'7': [0.1, 0.2, 0.3, 0.4, 0.5]},
                                'file_names': {'7': 'img_007'}}))
    by_id = LoadExitUtilities(str(path))
    assert by_id(dict(img_id=7, img_path='x/img_007.jpg'))['exit_utilities'][4] == 0.5
    by_name = LoadExitUtilities(str(path), key='file_name')
    assert by_name(dict(img_id=1, img_path='x/img_007.jpg'))['exit_utilities'][0] == 0.1
    with pytest.raises(KeyError, match='eco_m2f_exit_pq'):
        by_id(dict(img_id=8, img_path='x/img_008.jpg'))
    missing = LoadExitUtilities(str(tmp_path / 'none.json'))
    assert 'exit_utilities' not in missing(dict(img_id=7, img_path='x/img_007.jpg'))
