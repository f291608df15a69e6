"""HPM (Hard Patches Mining, CVPR'23): parity with the official model on the fixture of
tests/data/parity/hpm/README.md, mask/loss properties, the toy config, bad inputs."""
import os.path as osp

import pytest
import torch
from mmengine.logging import MessageHub

from mmmask.models.converters import convert_hpm
from mmmask.models.masking import HardPatchMasking
from mmmask.models.selfsup.hpm import (HPM, hpm_absolute_loss, hpm_relative_ranking_loss,
                                       pairwise_ranking_accuracy, patchify)
from mmmask.registry import MODELS
from mmmask.utils import register_all_modules

register_all_modules()

FIX = osp.join(osp.dirname(__file__), '..', 'data', 'parity', 'hpm')
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY = osp.join(REPO, 'configs', 'hpm', 'hpm_vit-tiny-p8_1xb64-60e_toy-pretrain.py')
ATOL = dict(atol=1e-5, rtol=1e-5)


def fixture_model(relative: bool = True, norm_pix: bool = False) -> HPM:
    """mmmask.HPM with the fixture's sizes (enc 32-d x 2 x 4 heads, dec 24-d x 2 x 3 heads)."""
    model = HPM(
        backbone=dict(type='mmmask.MaskedViT', img_size=32, patch_size=8,
                      arch=dict(embed_dims=32, num_layers=2, num_heads=4,
                                feedforward_channels=128)),
        neck=dict(type='mmmask.HPMDecoder', num_patches=16, patch_size=8, in_chans=3,
                  embed_dim=32, decoder_embed_dim=24, decoder_depth=2, decoder_num_heads=3,
                  mlp_ratio=4),
        head=dict(type='mmmask.HPMHead', patch_size=8, norm_pix=norm_pix, relative=relative),
        mask_generator=dict(type='mmmask.HardPatchMasking', ratio=0.75))
    model.init_weights()
    return model


def load(name='hpm_tiny.pt'):
    return torch.load(osp.join(FIX, name), weights_only=True)


@pytest.fixture(scope='module')
def fix():
    return load()


@pytest.fixture
def model(fix):
    m = fixture_model()
    missing, unexpected = m.load_state_dict(convert_hpm(fix['state_dict'], with_teacher=True),
                                            strict=True)
    assert not missing and not unexpected
    return m.eval()


def official_order(mask):
    """The official token order: visible ascending, then masked ascending."""
    return torch.argsort(mask.to(torch.int8), dim=1, stable=True)


def swap_halves(pos):
    d = pos.shape[-1] // 2
    return torch.cat([pos[..., d:], pos[..., :d]], dim=-1)


def test_sincos_pos_embed_is_official_up_to_grid_transpose(fix):
    """mmpretrain's 2-D sin-cos (used by MaskedViT and MAEPretrainDecoder) puts the row
    features first, official MAE/HPM the column features: the same embedding of the transposed
    grid. Trained from scratch this is immaterial; converted checkpoints carry their own."""
    m = fixture_model()
    torch.testing.assert_close(swap_halves(m.backbone.pos_embed), fix['state_dict']['pos_embed'],
                               **ATOL)
    torch.testing.assert_close(swap_halves(m.neck.decoder_pos_embed),
                               fix['state_dict']['decoder_pos_embed'], **ATOL)


def test_student_forward_and_losses(fix, model):
    imgs, mask = fix['inputs']['imgs'], fix['inputs']['mask']
    out = fix['outputs']
    order = official_order(mask)
    K = int((~mask[0]).sum())
    latent, pred, scores = model.forward_student(imgs, order, K)
    torch.testing.assert_close(latent, out['features'], **ATOL)
    torch.testing.assert_close(pred, out['pix_pred'], **ATOL)
    torch.testing.assert_close(scores, out['loss_pred'], **ATOL)
    M = out['mask_num']
    assert M == order.shape[1] - K
    losses = model.head.loss(pred[:, K:], scores[:, K:], imgs, order[:, K:])
    torch.testing.assert_close(losses['loss_rec'], out['loss_rec_mean'], **ATOL)
    torch.testing.assert_close(losses['loss_rank'], out['loss_learn_relative'], **ATOL)
    matrix = ((pred[:, K:] - model.head.target(imgs, order[:, K:]))**2).mean(-1)
    torch.testing.assert_close(matrix, out['loss_rec_matrix'], **ATOL)
    torch.testing.assert_close(hpm_absolute_loss(scores[:, K:], matrix.detach()),
                               out['loss_learn_absolute'], **ATOL)
    model.head.norm_pix = True
    matrix_np = ((pred[:, K:] - model.head.target(imgs, order[:, K:]))**2).mean(-1)
    torch.testing.assert_close(matrix_np, out['loss_rec_matrix_normpix'], **ATOL)
    torch.testing.assert_close(matrix_np.mean(), out['loss_rec_mean_normpix'], **ATOL)


def test_gradients(fix, model):
    imgs, mask = fix['inputs']['imgs'], fix['inputs']['mask']
    order = official_order(mask)
    K = int((~mask[0]).sum())
    _, pred, scores = model.forward_student(imgs, order, K)
    losses = model.head.loss(pred[:, K:], scores[:, K:], imgs, order[:, K:])
    total = losses['loss_rec'] + losses['loss_rank']
    torch.testing.assert_close(total, fix['outputs']['loss_total'], **ATOL)
    total.backward()
    torch.testing.assert_close(model.neck.loss_pred.weight.grad,
                               fix['outputs']['grad_decoder_pred_losspred_weight'],
                               atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(model.neck.decoder_pred.weight.grad,
                               fix['outputs']['grad_decoder_pred_weight'], atol=1e-6, rtol=1e-5)


def test_teacher_scores_full_image(fix, model):
    scores = model.patch_scores(fix['inputs']['imgs'])
    torch.testing.assert_close(scores, fix['outputs']['teacher_loss_pred'], **ATOL)


def test_ranking_loss_with_ties(fix):
    inp = fix['inputs']
    loss = hpm_relative_ranking_loss(inp['ranking_ties_pred'], inp['ranking_ties_target'])
    torch.testing.assert_close(loss, fix['outputs']['ranking_ties_loss'], **ATOL)
    # perfectly ordered scores: accuracy 1; reversed: 0; ties ignored
    t = torch.tensor([[0., 1., 1., 3.]])
    assert pairwise_ranking_accuracy(t * 2, t) == 1
    assert pairwise_ranking_accuracy(-t, t) == 0


@pytest.mark.parametrize('name,epoch', [('hpm_tiny.pt', 99), ('hpm_tiny_epoch0.pt', 0)])
def test_hard_patch_masking_properties(name, epoch):
    """Official ``generate_mask`` mixes numpy/torch RNG: compare properties, not values."""
    fx = load(name)
    scores, ref = fx['outputs']['teacher_loss_pred'], fx['outputs']['generate_mask'].bool()
    hub = MessageHub.get_current_instance()
    hub.update_info('epoch', epoch)
    hub.update_info('max_epochs', fx['meta']['total_epoch'])
    try:
        gen = HardPatchMasking(ratio=fx['meta']['mask_ratio'])
        sample = gen(2, (4, 4), scores=scores)
    finally:
        hub.update_info('epoch', 0)
        hub.update_info('max_epochs', 1)
    assert (sample.mask.sum(1) == ref.sum(1)).all()
    num_hard = sample.extras['num_hard']
    assert num_hard == (3 if epoch == 99 else 0)
    if num_hard:
        top = scores.argsort(dim=1, descending=True)[:, :num_hard]
        assert sample.mask.gather(1, top).all() and ref.gather(1, top).all()
    # ascending visible ids (HPM's boolean gather)
    assert (sample.ids_keep.diff(dim=1) > 0).all()


def test_patchify_layout():
    imgs = torch.arange(2 * 3 * 16 * 16, dtype=torch.float).reshape(2, 3, 16, 16)
    p = patchify(imgs, 8)
    assert p.shape == (2, 4, 192)
    # first patch, first pixel, channels last
    assert p[0, 0, :3].tolist() == [imgs[0, 0, 0, 0], imgs[0, 1, 0, 0], imgs[0, 2, 0, 0]]
    assert p[0, 1, 0] == imgs[0, 0, 0, 8]


def toy_model():
    from mmmask.apis import build_model_from_cfg, load_config
    cfg = load_config(TOY)
    model = build_model_from_cfg(cfg).train()
    model.init_weights()
    return model, cfg


def test_toy_config_train_step():
    from mmengine.optim import OptimWrapper
    torch.manual_seed(0)
    model, cfg = toy_model()
    assert model.needs_scores and model.teacher is not None
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    data = dict(inputs=torch.randint(0, 255, (4, 3, 32, 32), dtype=torch.uint8),
                data_samples=None)
    before = [p.clone() for p in model.teacher.module.parameters()]
    log = model.train_step(data, optim)
    assert {'loss_rec', 'loss_rank', 'rank_acc', 'loss'} <= set(log)
    assert torch.isfinite(log['loss'])
    # second step: the teacher moves (EMA update before the teacher pass)
    model.train_step(data, optim)
    moved = any(not torch.equal(a, b) for a, b in zip(before, model.teacher.module.parameters()))
    assert moved


def test_random_masking_needs_no_teacher_pass():
    torch.manual_seed(0)
    model, _ = toy_model()
    model.mask_generator = MODELS.build(dict(type='mmmask.RandomMasking', ratio=0.75,
                                             sort_keep=True))
    assert not model.needs_scores
    losses = model.loss(torch.randn(2, 3, 32, 32), None)
    assert losses['loss_rank'] > 0


def test_bad_generator_and_backbone():
    from mmmask.models.masking import BaseMaskGenerator, MaskSample

    class Uneven(BaseMaskGenerator):
        def forward(self, batch_size, grid, device=None, **signals):
            mask = torch.zeros(batch_size, grid[0] * grid[1], dtype=torch.bool)
            mask[0, :3] = True
            return MaskSample(mask=mask)

    model, _ = toy_model()
    model.mask_generator = Uneven()
    with pytest.raises(ValueError, match='fixed number of visible'):
        model.loss(torch.randn(2, 3, 32, 32), None)
    model.mask_generator = MODELS.build(
        dict(type='mmmask.DoubleMasking', generator=dict(type='mmmask.RandomMasking')))
    with pytest.raises(ValueError, match='HardPatchMasking'):
        model.loss(torch.randn(2, 3, 32, 32), None)
    with pytest.raises(ValueError, match='MaskedViT'):
        HPM(backbone=dict(type='mmpretrain.VisionTransformer', arch='deit-tiny', img_size=32,
                          patch_size=8),
            neck=dict(type='mmmask.HPMDecoder', num_patches=16, patch_size=8, embed_dim=192,
                      decoder_embed_dim=64, decoder_depth=1, decoder_num_heads=4),
            head=dict(type='mmmask.HPMHead', patch_size=8))


def test_converter_rejects_other_checkpoints(fix):
    from mmmask.models.converters import ConversionError
    with pytest.raises(ConversionError):
        convert_hpm({'foo.weight': torch.zeros(1)})
    sd = dict(fix['state_dict'], extra_key=torch.zeros(1))
    with pytest.raises(ConversionError, match='extra_key'):
        convert_hpm(sd)
    bb = convert_hpm(fix['state_dict'], backbone_only=True)
    assert all(k.startswith('backbone.') for k in bb)


@pytest.mark.parametrize('name,arch', [('keys_vit_base_patch16_dec512d8b.json', 'b'),
                                       ('keys_vit_large_patch16_dec512d8b.json', 'l')])
def test_official_keys_convert_onto_vit_models(name, arch):
    """Every key of the official ViT-B/L factories converts onto the paper config's model
    (backbone arch switched for L) with the right shape; parameter counts are equal."""
    import json

    from mmmask.apis import load_config
    ref = json.load(open(osp.join(FIX, name)))
    sd = {k: torch.zeros(v) for k, v in ref['keys'].items()}
    converted = convert_hpm(sd, with_teacher=True)
    cfg = load_config(osp.join(REPO, 'configs', 'hpm',
                               'hpm_vit-base-p16_8xb512-amp-coslr-800e_in1k.py'))
    cfg.model.backbone.arch = arch
    cfg.model.neck.embed_dim = 1024 if arch == 'l' else 768
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    ours = model.state_dict()
    assert set(converted) == set(ours)
    assert all(tuple(converted[k].shape) == tuple(ours[k].shape) for k in ours)
    student = sum(v.numel() for k, v in ours.items() if not k.startswith('teacher.'))
    assert student == ref['num_parameters_unique']


@pytest.mark.slow
def test_converter_cli(tmp_path, fix):
    import subprocess
    import sys
    src, dst = str(tmp_path / 'official.pth'), str(tmp_path / 'ours.pth')
    torch.save({'model': fix['state_dict']}, src)
    subprocess.run([sys.executable, osp.join(REPO, 'tools', 'model_converters', 'hpm2mmmask.py'),
                    src, dst, '--backbone-only'], check=True, capture_output=True)
    out = torch.load(dst, weights_only=True)['state_dict']
    assert out and all(k.startswith('backbone.') for k in out)
