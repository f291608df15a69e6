"""TOV-VICReg (Goulão & Oliveira 2023) and VICReg: parity with the official ``TOVVICReg.forward``
on the fixtures of tests/data/parity/tov_vicreg/README.md, exact-formula tests of the VICReg terms
and the temporal head, the converter, and bad inputs."""
import json
import os.path as osp

import pytest
import torch
import torch.nn.functional as F

from mmmask.models.converters.common import ConversionError
from mmmask.models.converters.tov_vicreg import bake_dino_pos_embed, convert_tov_vicreg
from mmmask.models.selfsup.gmml import dino_resize_pos_embed
from mmmask.models.selfsup.tov_vicreg import (TEMPORAL_ORDERS, TemporalOrderHead, TOVVICReg,
                                              VICReg, VICRegLoss, VICRegProjector, dino_vit_tokens,
                                              off_diagonal, parse_mlp_spec)
from mmmask.registry import MODELS
from mmmask.utils import register_all_modules

register_all_modules()

FIX = osp.join(osp.dirname(__file__), '..', 'data', 'parity', 'tov_vicreg')
ACT = dict(rtol=1e-5, atol=1e-5)
LOSS = dict(rtol=1e-5, atol=1e-4)
GRAD = dict(rtol=1e-4, atol=1e-4)  # values up to ~30; 1 vs 2 threads differ by <= 3e-5


def fixture_backbone(embed=24, depth=2, heads=2, img_size=224) -> dict:
    """The official DINO ViT as an mmpretrain ViT: learned positions on the 224-px grid, LN eps
    1e-6, qkv bias, floor patching (no adaptive padding), cls output."""
    return dict(type='mmmask.MaskedViT', img_size=img_size, patch_size=8, fixed_pos_embed=False,
                out_type='cls_token', patch_cfg=dict(padding=0),
                arch=dict(embed_dims=embed, num_layers=depth, num_heads=heads,
                          feedforward_channels=4 * embed))


def fixture_model(args: dict) -> TOVVICReg:
    width = 24
    model = TOVVICReg(
        backbone=fixture_backbone(),
        neck=dict(type='mmmask.VICRegProjector', in_channels=width, mlp=args['mlp']),
        head=dict(type='mmmask.TemporalOrderHead', in_channels=width),
        loss=dict(type='mmmask.VICRegLoss', sim_coeff=args['sim_coeff'],
                  std_coeff=args['std_coeff'], cov_coeff=args['cov_coeff'],
                  batch_size=args['batch_size']),
        temporal_coeff=args['temporal_coeff'])
    model.init_weights()
    return model


def load(name):
    return torch.load(osp.join(FIX, name), weights_only=True)


@pytest.fixture(scope='module', params=['tov_tiny.pt', 'tov_tiny_codedefaults.pt'])
def fix(request):
    return load(request.param)


@pytest.fixture
def model(fix):
    m = fixture_model(fix['meta']['config']['args'])
    missing, unexpected = m.load_state_dict(convert_tov_vicreg(fix['state_dict']), strict=True)
    assert not missing and not unexpected
    return m.train()


def run(model, fix):
    i = fix['inputs']
    return model.forward_train(i['x'], i['y'], i['z'], i['w'], order_labels=i['shuffle_labels'])


def test_forward_matches_official(fix, model):
    out, ref = run(model, fix), fix['outputs']
    for k in 'xyzw':
        torch.testing.assert_close(out[f'repr_{k}'], ref[f'repr_{k}'], **ACT)
        torch.testing.assert_close(out[f'proj_{k}'], ref[f'proj_{k}'], **ACT)
    torch.testing.assert_close(out['concat'], ref['shuffled_concat'], **ACT)
    torch.testing.assert_close(out['logits'], ref['pred_temporal_class'], **ACT)
    names = dict(temporal='temporal_loss', invariance='invariance_loss',
                 variance='variance_loss', covariance='covariance_loss')
    for ours, theirs in names.items():
        torch.testing.assert_close(out[ours], ref['log'][theirs], **LOSS)
    torch.testing.assert_close(out['loss'], ref['loss'], **LOSS)


def test_projector_bn_statistics_updated_by_all_four_views(fix, model):
    """Quirk 5: z and w are projected (unused) and still move the BN running statistics."""
    run(model, fix)
    state = model.neck.projector.state_dict()
    for key, value in fix['outputs']['projector_bn_after'].items():
        if key.endswith('num_batches_tracked'):
            assert int(state[key]) == int(value) == int(fix['state_dict'][
                f'projector.{key}']) + 4
        else:
            torch.testing.assert_close(state[key], value, **ACT)


def test_gradients_match_official(fix, model):
    out = run(model, fix)
    out['loss'].backward()
    ref = fix['outputs']
    torch.testing.assert_close(model.head.fc.weight.grad,
                               ref['grad_temporal_order_predictor_weight'], **ACT)
    torch.testing.assert_close(model.backbone.patch_embed.projection.weight.grad,
                               ref['grad_patch_embed_weight'], **GRAD)


def test_loss_dict_sums_to_official_total(fix, model):
    i = fix['inputs']
    losses = model.loss([i['x'], i['y'], i['z'], i['w']], order_labels=i['shuffle_labels'])
    total = sum(v for k, v in losses.items() if 'loss' in k)
    torch.testing.assert_close(total, fix['outputs']['loss'], **LOSS)
    assert 0.0 <= float(losses['temporal_bacc']) <= 1.0


def test_pos_embed_is_dino_interpolated(fix, model):
    """Quirk 8: the 28x28 (224-px) table is resized bicubically with the +0.1 scale trick, which
    differs from mmpretrain's size-based resize."""
    from mmpretrain.models.utils import resize_pos_embed
    x = fix['inputs']['x']
    grid = (x.shape[-2] // 8, x.shape[-1] // 8)
    pos = model.backbone.pos_embed
    dino = dino_resize_pos_embed(pos, (28, 28), grid)
    mmpre = resize_pos_embed(pos, (28, 28), grid, mode='bicubic', num_extra_tokens=1)
    assert (dino - mmpre).abs().max() > 1e-3
    model.pos_interpolation = 'mmpretrain'
    with torch.no_grad():
        off = model.represent(x)
    assert (off - fix['outputs']['repr_x']).abs().max() > 1e-4


def test_baked_pos_embed_gives_official_outputs_in_plain_vit(fix):
    """The converter's ``pos_grid`` bakes the interpolation: an mmpretrain ViT built for the input
    size reproduces the official representation with its plain forward."""
    x = fix['inputs']['x']
    side = x.shape[-1] // 8
    sd = convert_tov_vicreg(fix['state_dict'], backbone_only=True, pos_grid=(side, side))
    vit = MODELS.build(fixture_backbone(img_size=x.shape[-1]))
    vit.load_state_dict({k[len('backbone.'):]: v for k, v in sd.items()}, strict=True)
    vit.eval()
    with torch.no_grad():
        out = vit(x)[-1]
    torch.testing.assert_close(out, fix['outputs']['repr_x'], **ACT)


def test_converter_keys_match_official_vit_tiny_layout():
    """Every key of the official vit_tiny/p8/1024-1024-1024 TOVVICReg maps onto the mmmask model
    of the paper config, with the same shapes."""
    with open(osp.join(FIX, 'keys_tov_vicreg_vit_tiny_p8.json')) as f:
        spec = json.load(f)
    official = {k: torch.empty(v) for k, v in spec['keys'].items()}
    assert len(official) == spec['num_state_dict_entries']
    converted = convert_tov_vicreg(official)
    model = TOVVICReg(backbone=dict(fixture_backbone(192, 12, 3)),
                      neck=dict(type='mmmask.VICRegProjector', in_channels=192,
                                mlp='1024-1024-1024'),
                      head=dict(type='mmmask.TemporalOrderHead', in_channels=192))
    ref = model.state_dict()
    assert set(converted) == set(ref)
    for k, v in converted.items():
        assert tuple(v.shape) == tuple(ref[k].shape), k
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == spec['num_parameters_unique']


def test_converter_reads_saved_encoder_and_rejects_foreign_keys(fix):
    encoder = {k[len('backbone.'):]: v for k, v in fix['state_dict'].items()
               if k.startswith('backbone.')}
    converted = convert_tov_vicreg({'module.' + k: v for k, v in encoder.items()})
    assert all(k.startswith('backbone.') for k in converted)
    assert 'backbone.ln1.weight' in converted
    with pytest.raises(ConversionError, match='not official TOV-VICReg'):
        convert_tov_vicreg(dict(fix['state_dict'], **{'predictor.0.weight': torch.zeros(1)}))
    with pytest.raises(ConversionError, match='no TOV-VICReg ViT keys'):
        convert_tov_vicreg({'encoder.layer.weight': torch.zeros(1)})
    with pytest.raises(ConversionError, match='square'):
        bake_dino_pos_embed(torch.zeros(1, 7, 4), (2, 2))


# ---------------------------------------------------------------- exact formulas / properties
def test_vicreg_loss_formula():
    torch.manual_seed(0)
    z1, z2 = torch.randn(8, 5), torch.randn(8, 5)
    out = VICRegLoss(sim_coeff=2., std_coeff=3., cov_coeff=4.)(z1, z2)
    inv = ((z1 - z2)**2).mean()

    def var_cov(z):
        zc = z - z.mean(0)
        std = (zc.pow(2).sum(0) / 7 + 1e-4).sqrt()
        cov = zc.T @ zc / 7
        off = cov - torch.diag(torch.diag(cov))
        return torch.clamp(1 - std, min=0).mean() / 2, off.pow(2).sum() / 5

    (v1, c1), (v2, c2) = var_cov(z1), var_cov(z2)
    torch.testing.assert_close(out['invariance'], inv)
    torch.testing.assert_close(out['variance'], v1 + v2)
    torch.testing.assert_close(out['covariance'], c1 + c2)
    torch.testing.assert_close(out['loss'], 2 * inv + 3 * (v1 + v2) + 4 * (c1 + c2))


def test_vicreg_configured_batch_size_quirk():
    """Quirk 4: the covariance divides by the configured batch size - 1; a different batch is an
    error naming the fix (the official code would crash in the order-label draw)."""
    torch.manual_seed(0)
    z1, z2 = torch.randn(6, 4), torch.randn(6, 4)
    actual = VICRegLoss()(z1, z2)['covariance']
    assert torch.allclose(VICRegLoss(batch_size=6)(z1, z2)['covariance'], actual)
    with pytest.raises(ValueError, match='drop_last=True'):
        VICRegLoss(batch_size=8)(z1, z2)
    with pytest.raises(ValueError, match='batch_size must be >= 2'):
        VICRegLoss(batch_size=1)


def test_off_diagonal_and_mlp_spec():
    x = torch.arange(9.).view(3, 3)
    assert off_diagonal(x).tolist() == [1, 2, 3, 5, 6, 7]
    assert parse_mlp_spec('40-40-16') == [40, 40, 16]
    with pytest.raises(ValueError, match="'1024-1024-1024'"):
        parse_mlp_spec('1024x1024')
    with pytest.raises(ValueError, match='square'):
        off_diagonal(torch.zeros(2, 3))


def test_projector_layout():
    """Quirk 7: Linear+BN+ReLU, Linear+BN+ReLU, Linear without bias (official key indices)."""
    p = VICRegProjector(in_channels=6, mlp='40-40-16')
    keys = set(p.state_dict())
    assert {'projector.0.weight', 'projector.0.bias', 'projector.1.running_mean',
            'projector.3.weight', 'projector.4.weight', 'projector.6.weight'} <= keys
    assert 'projector.6.bias' not in keys and p.embedding_size == 16
    assert p(torch.randn(4, 6, 3, 3)).shape == (4, 16)  # CNN maps are pooled
    with pytest.raises(ValueError, match='in_channels'):
        p(torch.randn(4, 5))


def test_temporal_orders_and_targets():
    """Quirk 1: reference order (t, t-1, t+1) = label 0 = target 0, the other five target 1."""
    assert TEMPORAL_ORDERS == ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))
    head = TemporalOrderHead(in_channels=2)
    t, p, n = torch.full((6, 2), 1.), torch.full((6, 2), 2.), torch.full((6, 2), 3.)
    labels = torch.arange(6)
    out = head.loss([t, p, n], labels)
    firsts = out['concat'][:, ::2]  # one entry per slot
    expected = torch.tensor(TEMPORAL_ORDERS, dtype=torch.float) + 1
    torch.testing.assert_close(firsts, expected)
    assert out['targets'].view(-1).tolist() == [0, 1, 1, 1, 1, 1]
    torch.testing.assert_close(
        out['loss'], F.binary_cross_entropy_with_logits(head.fc(out['concat']), out['targets']))
    with pytest.raises(ValueError, match='0..5'):
        head.loss([t, p, n], torch.full((6, ), 6))
    with pytest.raises(ValueError, match=r'\(t, t-1, t\+1\)'):
        head.loss([t, p])


def test_balanced_accuracy():
    logits = torch.tensor([[-1., 1, 1, 1, 1, 1], [1., 1, 1, 1, 1, 1]])
    assert float(TemporalOrderHead.balanced_accuracy(logits)) == pytest.approx(0.75)
    assert float(TemporalOrderHead.balanced_accuracy(torch.ones(3, 6))) == pytest.approx(0.5)
    ranked = torch.tensor([[0., 1, 1, 1, 1, 1], [2., 1, 3, 3, 3, 2]])  # 5/5 and 3/5 (+ one tie)
    assert float(TemporalOrderHead.ranking_accuracy(ranked)) == pytest.approx((5 + 3.5) / 10)
    assert float(TemporalOrderHead.ranking_accuracy(torch.ones(3, 6))) == pytest.approx(0.5)


def test_head_sees_backbone_representations_not_projections(fix, model):
    """Quirk 3 of the head: its input is the concatenation of backbone reps (width 3D)."""
    out = run(model, fix)
    D = out['repr_x'].shape[1]
    assert out['concat'].shape[1] == 3 * D != 3 * out['proj_x'].shape[1]
    for k in range(6):
        sel = fix['inputs']['shuffle_labels'] == k
        if sel.any():
            stack = [out['repr_x'], out['repr_z'], out['repr_w']]
            expected = torch.cat([stack[j][sel] for j in TEMPORAL_ORDERS[k]], dim=1)
            torch.testing.assert_close(out['concat'][sel], expected)


def test_plain_vicreg_with_cnn_backbone_trains():
    torch.manual_seed(0)
    model = VICReg(backbone=dict(type='mmpretrain.ResNet_CIFAR', depth=18, stem_channels=16,
                                 base_channels=16),
                   neck=dict(type='mmmask.VICRegProjector', in_channels=128, mlp='64-64'))
    model.init_weights()
    x = torch.randn(4, 3, 16, 16)
    losses = model.loss([x, x.flip(-1)])
    assert set(losses) == {'loss', 'inv', 'var', 'cov'}
    losses['loss'].backward()
    assert model.backbone.conv1.weight.grad is not None
    with pytest.raises(ValueError, match='MultiView'):
        model.loss(x)


def test_tov_vicreg_bad_inputs(fix, model):
    i = fix['inputs']
    with pytest.raises(ValueError, match='4 views'):
        model.loss([i['x'], i['y']])
    with pytest.raises(ValueError, match='drop_last=True'):
        model.loss([v[:3] for v in (i['x'], i['y'], i['z'], i['w'])])


def test_extract_feat_and_dino_tokens(fix, model):
    x = fix['inputs']['x']
    model.eval()
    with torch.no_grad():
        tokens = model.extract_feat(x)[0]
        assert tokens.shape == (x.shape[0], 1 + (x.shape[-1] // 8)**2, 24)
        torch.testing.assert_close(tokens[:, 0], dino_vit_tokens(model.backbone, x)[:, 0])
        logits = model.temporal_order_logits(x, fix['inputs']['z'], fix['inputs']['w'])
    assert logits.shape == (x.shape[0], 6)
