"""Parity of mmmask's kMaX-DeepLab modules with the official bytedance/kmax-deeplab code.

Fixtures: ``tests/data/parity/kmax/`` (see its README for how they were made and the tolerances).
"""
import os.path as osp
import subprocess
import sys

import pytest
import torch

from mmmask.models.converters import (ConversionError, convert_kmax,
                                      convert_kmax_pixel_decoder,
                                      convert_kmax_transformer_decoder)
from mmmask.models.layers import KMaXPixelDecoder
from mmmask.models.layers.kmax_transformer_decoder import (KMaXAuxSemanticHead,
                                                           KMaXTransformerDecoder)
from mmmask.models.losses.kmax_loss import KMaXCriterion

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DATA = osp.join(ROOT, 'tests', 'data', 'parity', 'kmax')
ATOL, RTOL = 1e-5, 1e-5
# the pixel decoder's outputs reach |x| ~ 46 here; float reordering gives up to 2.3e-5 abs error
PIXEL_DECODER_ATOL = 5e-5
LOSS_RTOL = 1e-6

# official loss name -> KMaXCriterion name
LOSS_NAMES = dict(loss_ce='loss_pq_cls', loss_mask='loss_mask_id', loss_dice='loss_pq_dice',
                  loss_pixel_insdis='loss_insdis', loss_aux_semantic='loss_aux_sem')


def _load(name):
    return torch.load(osp.join(DATA, name), weights_only=True)


def _close(name, a, b, atol=ATOL, rtol=RTOL):
    assert a.shape == b.shape, (name, a.shape, b.shape)
    # Sums of large terms that cancel keep an absolute error relative to the terms, not to the
    # result: allow 1e-6 of the tensor's largest magnitude (~8 float32 ulps of it). The mask logits
    # reach |x| ~ 230, and a process started with OMP_NUM_THREADS=1 (the test runner's setting)
    # picks kernels whose summation order moves small entries by ~1.7e-4.
    atol = max(atol, 1e-6 * b.abs().max().item())
    err = (a - b).abs().max().item()
    assert torch.allclose(a, b, atol=atol, rtol=rtol), f'{name}: max abs err {err:.3g}'


@pytest.fixture(autouse=True)
def one_thread():
    """The fixtures were computed with one thread; the same summation order keeps the comparison
    at the stated tolerances (mask logits reach |x| ~ 230, where another thread count moves
    small entries by ~1e-4)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _strict_load(module, state_dict):
    res = module.load_state_dict(state_dict, strict=True)
    assert not res.missing_keys and not res.unexpected_keys


def _build_pixel_decoder(meta):
    kw = meta['kwargs']
    assert kw['num_heads'] == 8
    return KMaXPixelDecoder(kw['input_channels'], kw['dec_channels'], kw['dec_layers'],
                            kw['layer_types'], num_heads=8, align_corners=None).eval()


def _build_decoder(meta):
    kw, w = meta['kwargs'], meta['width_substitutions']
    num_outputs = kw['num_classes'] + 1
    decoder = KMaXTransformerDecoder(
        in_channels=kw['in_channels'][:3], os4_channels=kw['in_channels'][3],
        num_layers=kw['dec_layers'], num_clusters=kw['num_queries'], num_outputs=num_outputs,
        void_prior=0.9, channels=w['query_channels'], key_channels=w['key_channels'],
        ffn_channels=w['ffn_channels'], num_heads=w['num_heads'],
        mask_channels=w['mask_channels'], align_corners=None).eval()
    shapes = kw['input_shape_from_backbone']
    aux = KMaXAuxSemanticHead(
        [shapes['res5'][0], shapes['res3'][0], shapes['res2'][0]], num_outputs,
        channels=w['aspp_channels'], low_level_channels=w['low_level_channels'],
        align_corners=None).eval()
    return decoder, aux


def test_pixel_decoder_parity():
    fx = _load('pixel_decoder.pt')
    model = _build_pixel_decoder(fx['meta'])
    _strict_load(model, convert_kmax_pixel_decoder(fx['state_dict']))
    inp = fx['inputs']
    feats = [inp['res2'], inp['res3'], inp['res4'], inp['res5']]
    with torch.no_grad():
        multi_scale, os4, semantic = model(feats)
    out = fx['outputs']
    for i, (a, b) in enumerate(zip(multi_scale, out['multi_scale'])):
        _close(f'multi_scale[{i}]', a, b, atol=PIXEL_DECODER_ATOL)
    _close('os4', os4, out['os4'], atol=PIXEL_DECODER_ATOL)
    for i, (a, b) in enumerate(zip(semantic, out['semantic'])):
        assert torch.equal(a, b), f'semantic[{i}]'


def test_transformer_decoder_parity():
    fx = _load('transformer_decoder.pt')
    decoder, aux = _build_decoder(fx['meta'])
    converted = convert_kmax_transformer_decoder(fx['state_dict'], 'decoder.', 'aux.')
    _strict_load(decoder, {k[8:]: v for k, v in converted.items() if k.startswith('decoder.')})
    _strict_load(aux, {k[4:]: v for k, v in converted.items() if k.startswith('aux.')})
    inp, out = fx['inputs'], fx['outputs']
    with torch.no_grad():
        pred = decoder(inp['multi_scale'], inp['os4'])
        sem = aux(inp['semantic'])
    for key in ('pred_logits', 'pred_masks', 'pixel_feature'):
        _close(key, pred[key], out[key])
    assert len(pred['aux_outputs']) == len(out['aux_outputs'])
    for i, (a, b) in enumerate(zip(pred['aux_outputs'], out['aux_outputs'])):
        for key in ('pred_logits', 'pred_masks', 'pixel_feature'):
            _close(f'aux_outputs[{i}].{key}', a[key], b[key])
    _close('aux_semantic_pred', sem, out['aux_semantic_pred'])

    # odd sizes (os4 17x25): the per-layer predictions are resized with align_corners=True
    inp, out = fx['inputs_odd'], fx['outputs_odd']
    with torch.no_grad():
        pred = decoder(inp['multi_scale'], inp['os4'])
    for key in ('pred_logits', 'pred_masks', 'pixel_feature'):
        _close(f'odd {key}', pred[key], out[key])
    for i, (a, b) in enumerate(zip(pred['aux_outputs'], out['aux_outputs'])):
        for key in ('pred_logits', 'pred_masks'):
            _close(f'odd aux_outputs[{i}].{key}', a[key], b[key])


@pytest.mark.parametrize('case', ['sampled', 'all_pixels', 'aux_no_sampling'])
def test_criterion_parity(case):
    fx = _load('criterion.pt')
    meta, inp = fx['meta'], fx['inputs']
    cfg = meta['cases'][case]
    w = meta['weight_dict']
    num_classes = meta['num_classes']
    criterion = KMaXCriterion(
        num_classes, class_weight=w['loss_ce'], dice_weight=w['loss_dice'],
        mask_id_weight=w['loss_mask'], insdis_weight=w['loss_pixel_insdis'],
        aux_semantic_weight=w['loss_aux_semantic'],
        insdis_temperature=meta['instance_discrimination_temperature'],
        insdis_sample_k=cfg['pixel_insdis_sample_k'],
        insdis_sample_temperature=meta['pixel_insdis_temperature'],
        aux_semantic_sample_k=cfg['aux_semantic_sample_k'],
        aux_semantic_sample_temperature=meta['aux_semantic_temperature'],
        eos_coef=meta['eos_coef'], ignore_index=255)
    outputs = dict(inp['outputs'])
    aux_sem = outputs.pop('aux_semantic_pred')
    gt_sem = inp['gt_semantic'].clone()
    gt_sem[gt_sem == -1] = 255
    # Both implementations draw their Gumbel noise with one torch.rand per sampled output, in the
    # same order and shape, so seeding identically reproduces the official sampled pixels.
    torch.manual_seed(cfg['torch_manual_seed_before_call'])
    losses = criterion(outputs, inp['gt_masks'], inp['gt_labels'], aux_semantic_logits=aux_sem,
                       gt_semantic=gt_sem)
    expected = {}
    for name, value in fx['outputs']['losses'][case].items():
        base, _, idx = name.rpartition('_')
        if idx.isdigit():
            expected[f'd{idx}.{LOSS_NAMES[base]}'] = value * w[base]
        else:
            expected[LOSS_NAMES[name]] = value * w[name]
    assert set(losses) == set(expected)
    for name, value in expected.items():
        _close(name, losses[name].float(), value, atol=1e-6, rtol=LOSS_RTOL)

    targets = criterion.build_targets(outputs, inp['gt_masks'], inp['gt_labels'])
    for (rows, cols), (ref_rows, ref_cols) in zip(targets['indices'],
                                                  fx['outputs']['indices']):
        assert torch.equal(rows.cpu(), ref_rows) and torch.equal(cols.cpu(), ref_cols)


def _full_checkpoint():
    pd = _load('pixel_decoder.pt')['state_dict']
    td = _load('transformer_decoder.pt')['state_dict']
    ckpt = {'sem_seg_head.pixel_decoder.' + k: v for k, v in pd.items()}
    ckpt.update({'sem_seg_head.predictor.' + k: v for k, v in td.items()})
    ckpt['pixel_mean'] = torch.zeros(3, 1, 1)
    ckpt['pixel_std'] = torch.ones(3, 1, 1)
    return ckpt


def test_convert_kmax_full_keys():
    ckpt = _full_checkpoint()
    out = convert_kmax(ckpt)
    assert len(out) == len(ckpt) - 2
    assert 'heads.semantic.decoder.cluster_centers' in out
    assert torch.equal(out['heads.semantic.decoder.cluster_centers'],
                       ckpt['sem_seg_head.predictor._cluster_centers.weight'])
    assert any(k.startswith('heads.semantic.aux_semantic_head.aspp.') for k in out)
    assert 'pixel_decoder.in_norms.0.weight' in out
    moved = convert_kmax(ckpt, in_norm_to_backbone=True)
    assert torch.equal(moved['backbone.norm3.weight'],
                       ckpt['sem_seg_head.pixel_decoder._in_norms.0.weight'])
    assert not any(k.startswith('pixel_decoder.in_norms') for k in moved)
    # a tiny official ConvNeXt backbone maps onto mmpretrain's ConvNeXt key for key
    from mmpretrain.models import ConvNeXt
    mine = ConvNeXt(arch=dict(depths=[1, 1, 1, 1], channels=[8, 8, 16, 16]),
                    out_indices=(0, 1, 2, 3), gap_before_final_norm=False)
    official = {}
    for k, v in mine.state_dict().items():
        if k.startswith('norm'):
            continue
        k = (k.replace('depthwise_conv', 'dwconv').replace('pointwise_conv', 'pwconv'))
        official['backbone.' + k] = v
    out = convert_kmax({**ckpt, **official})
    bb = {k[9:]: v for k, v in out.items() if k.startswith('backbone.')}
    expected = {k for k in mine.state_dict() if not k.startswith('norm')}
    assert set(bb) == expected
    with pytest.raises(ConversionError):
        convert_kmax({**ckpt, 'backbone.res2.0.conv1.weight': torch.zeros(1)})
    with pytest.raises(ConversionError):
        convert_kmax({**ckpt, 'sem_seg_head.predictor.bogus': torch.zeros(1)})


def test_kmax2mmmask_cli(tmp_path):
    src = tmp_path / 'model_final.pth'
    dst = tmp_path / 'out' / 'kmax_mmmask.pth'
    torch.save({'model': _full_checkpoint(), 'iteration': 1}, src)
    env = dict(__import__('os').environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'model_converters', 'kmax2mmmask.py'), str(src),
         str(dst)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    saved = torch.load(dst, weights_only=True)
    assert saved['meta']['converter'] == 'kmax2mmmask'
    sd = saved['state_dict']
    fx = _load('transformer_decoder.pt')
    decoder, _ = _build_decoder(fx['meta'])
    prefix = 'heads.semantic.decoder.'
    _strict_load(decoder, {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)})
    pd = _build_pixel_decoder(_load('pixel_decoder.pt')['meta'])
    _strict_load(pd, {k[14:]: v for k, v in sd.items() if k.startswith('pixel_decoder.')})
