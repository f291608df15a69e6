"""PPMA: parity with the official code (fixtures in tests/data/parity/ppma), converter, API."""
import json
import os.path as osp

import pytest
import torch

from mmmask.models import PPMA, PolylinePathDecay, segment_sum
from mmmask.models.backbones.ppma import PolylinePathAttention, raster_rope
from mmmask.models.converters import ConversionError, convert_ppma
from mmmask.models.converters.common import check_complete

DATA = osp.join(osp.dirname(osp.dirname(__file__)), 'data', 'parity', 'ppma')


def fixture(name):
    return torch.load(osp.join(DATA, name), weights_only=True)


def convert_attention(sd):
    """Official attention keys, through the model converter (prefix in, prefix out)."""
    prefix = 'layers.0.blocks.0.retention.'
    out = convert_ppma({prefix + k: v for k, v in sd.items()}, with_head=False)
    ours = 'backbone.stages.0.blocks.0.attn.'
    assert all(k.startswith(ours) for k in out)
    return {k[len(ours):]: v for k, v in out.items()}


@pytest.mark.parametrize('mode,name', [('whole', 'attn_whole.pt'), ('chunk', 'attn_chunk.pt')])
def test_attention_parity(mode, name):
    fx = fixture(name)
    attn = PolylinePathAttention(24, 3, mode).eval()
    attn.load_state_dict(convert_attention(fx['state_dict']), strict=True)
    x, sin, cos = fx['inputs']['x'], fx['inputs']['sin'], fx['inputs']['cos']
    ours_sin, ours_cos = raster_rope((5, 7), 8)
    torch.testing.assert_close(ours_sin, sin, atol=1e-6, rtol=0)
    torch.testing.assert_close(ours_cos, cos, atol=1e-6, rtol=0)
    with torch.no_grad():
        out = attn(x, (sin, cos))
        bias = attn.path(x)
    torch.testing.assert_close(out, fx['outputs']['out'], atol=1e-5, rtol=1e-4)
    masks = fx['outputs']['path_embed']
    if mode == 'chunk':
        torch.testing.assert_close(bias.row, masks['structed_mask_w'], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(bias.col, masks['structed_mask_h'], atol=1e-5, rtol=1e-4)
    else:
        torch.testing.assert_close(bias.dense(), masks['structed_mask'], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(bias.dense(transpose=True),
                                   masks['structed_mask'].transpose(-1, -2), atol=1e-5, rtol=1e-4)


def fixture_arch(kwargs):
    return dict(embed_dims=kwargs['embed_dims'], depths=kwargs['depths'],
                num_heads=kwargs['num_heads'], mlp_ratios=kwargs['mlp_ratios'],
                modes=['chunk' if c else 'whole' for c in kwargs['chunkwise_recurrents']],
                layer_scales=[kwargs['layer_init_values'] if s else None
                              for s in kwargs['layerscales']])


def test_backbone_parity_mixed_modes():
    fx = fixture('backbone_mixed.pt')
    model = PPMA(arch=fixture_arch(fx['meta']['kwargs']), out_indices=(0, 1, 2, 3)).eval()
    sd = convert_ppma(fx['state_dict'], with_head=False)
    sd = {k[len('backbone.'):]: v for k, v in sd.items()}
    model.load_state_dict(sd, strict=True)
    with torch.no_grad():
        outs = model(fx['inputs']['x'])
    assert len(outs) == 4
    for ours, ref in zip(outs, fx['outputs']['outs']):
        assert ours.shape == ref.shape
        torch.testing.assert_close(ours, ref, atol=5e-5, rtol=1e-4)


@pytest.mark.parametrize('arch', ['tiny', 'small', 'base'])
def test_official_keys_cover_our_state_dict(arch):
    """Every official key of the published variants converts onto our modules, shapes included."""
    with open(osp.join(DATA, f'keys_ppma_{arch}.json')) as f:
        keys = json.load(f)['keys']
    official = {name: torch.empty(shape) for name, shape, _ in keys}
    converted = convert_ppma(official, with_head=False)
    converted = {k[len('backbone.'):]: v for k, v in converted.items()}
    ours = PPMA(arch=arch).state_dict()
    check_complete(converted, ours, f'PPMA-{arch}')
    assert set(converted) == set(ours)
    n_params = sum(p.numel() for p in PPMA(arch=arch).parameters())
    with open(osp.join(DATA, f'keys_ppma_{arch}.json')) as f:
        assert n_params == json.load(f)['num_parameters']


def test_converter_names_unexpected_keys():
    with pytest.raises(ConversionError, match='encoder.layer.0.weight'):
        convert_ppma({'encoder.layer.0.weight': torch.zeros(1)})


def test_classification_checkpoint_layout():
    sd = {'patch_embed.proj.0.weight': torch.zeros(1), 'proj.weight': torch.zeros(1),
          'norm.running_mean': torch.zeros(1), 'head.bias': torch.zeros(1)}
    out = convert_ppma(sd)
    assert set(out) == {'backbone.stem.0.weight', 'head.proj.weight', 'head.norm.running_mean',
                        'head.fc.bias'}
    assert set(convert_ppma(sd, with_head=False)) == {'backbone.stem.0.weight'}


def test_segment_sum_matches_definition():
    a = -torch.rand(2, 6)
    s = segment_sum(a)
    for i in range(6):
        for j in range(6):
            lo, hi = min(i, j), max(i, j)
            torch.testing.assert_close(s[:, i, j], a[:, lo + 1:hi + 1].sum(-1))


def test_polyline_bias_matches_explicit_paths():
    """M[(r1,i),(r2,j)] = sum of α along row r1 from i to j + sum of β along column j from r1 to r2."""
    torch.manual_seed(0)
    decay = PolylinePathDecay(8, 2)
    x = torch.randn(1, 3, 4, 8)
    with torch.no_grad():
        alpha, beta = decay.decays(x)
        dense = decay(x).dense()
    hh, ww = 3, 4
    for h in range(2):
        for r1 in range(hh):
            for i in range(ww):
                for r2 in range(hh):
                    for j in range(ww):
                        lo, hi = sorted((i, j))
                        along_row = alpha[0, r1, lo + 1:hi + 1, h].sum()
                        lo, hi = sorted((r1, r2))
                        along_col = beta[0, lo + 1:hi + 1, j, h].sum()
                        torch.testing.assert_close(dense[0, h, r1 * ww + i, r2 * ww + j],
                                                   along_row + along_col)


def test_unknown_arch_lists_valid_ones():
    with pytest.raises(ValueError, match="'base', 'small', 'tiny'"):
        PPMA(arch='huge')
    with pytest.raises(ValueError, match='misses'):
        PPMA(arch=dict(embed_dims=[8]))


def test_size_divisor():
    model = PPMA(arch='tiny', size_divisor=32, pad_input=False)
    with pytest.raises(ValueError, match='size_divisor=32'):
        model(torch.zeros(1, 3, 40, 64))
    padded = PPMA(arch=dict(PPMA.arch_zoo['tiny'], depths=[1, 1, 1, 1]), size_divisor=32)
    outs = padded(torch.zeros(1, 3, 40, 64))
    assert outs[0].shape[-2:] == (16, 16) and outs[3].shape[-2:] == (2, 2)


def test_frozen_stages_and_norm_eval():
    model = PPMA(arch=dict(PPMA.arch_zoo['tiny'], depths=[1, 1, 1, 1]), frozen_stages=2,
                 norm_eval=True)
    model.train()
    assert all(not p.requires_grad for p in model.stem.parameters())
    assert all(not p.requires_grad for p in model.stages[1].parameters())
    assert all(p.requires_grad for p in model.stages[2].parameters())
    assert not model.stem[1].training  # BN in eval


def test_converter_cli(tmp_path):
    """The official segmentation layout (mmseg prefix) converts and verifies; a wrong one fails."""
    import subprocess
    import sys
    from conftest import REPO
    with open(osp.join(DATA, 'keys_ppma_tiny.json')) as f:
        keys = json.load(f)['keys']
    official = {'backbone.' + n: torch.zeros(s) for n, s, _ in keys}
    official['decode_head.conv_seg.weight'] = torch.zeros(150, 512, 1, 1)
    src = tmp_path / 'iter_160000.pth'
    torch.save({'state_dict': official, 'meta': {}}, str(src))
    tool = osp.join(REPO, 'tools', 'model_converters', 'ppma2mmmask.py')
    dst = tmp_path / 'out.pth'
    subprocess.run([sys.executable, tool, str(src), str(dst), '--arch', 'tiny'], check=True,
                   capture_output=True)
    out = torch.load(str(dst), weights_only=False)['state_dict']
    assert 'decode_head.conv_seg.weight' in out and 'backbone.stem.0.weight' in out
    bad = tmp_path / 'bad.pth'
    torch.save({'model': {'blocks.0.weight': torch.zeros(1)}}, str(bad))
    proc = subprocess.run([sys.executable, tool, str(bad), str(dst)], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and 'blocks.0.weight' in proc.stderr
    small = tmp_path / 'small.pth'
    torch.save({'model': {n: torch.zeros(s) for n, s, _ in keys if 'layers.3' not in n}},
               str(small))
    proc = subprocess.run([sys.executable, tool, str(small), str(dst), '--arch', 'tiny'],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and 'missing' in proc.stderr and 'stages.3' in proc.stderr


def test_mask_rcnn_with_ppma_runs():
    """The detection config's model (mmdet Mask R-CNN + FPN) runs a loss step on a tiny PPMA."""
    from mmdet.structures import DetDataSample
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.structures import InstanceData
    from conftest import REPO
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'ppma', 'mask-rcnn_ppma-tiny_fpn_1x_coco.py'))
    init_default_scope('mmdet')
    cfg.model.backbone.arch = dict(PPMA.arch_zoo['tiny'], depths=[1, 1, 1, 1])
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    sample = DetDataSample(metainfo=dict(img_shape=(64, 64), pad_shape=(64, 64),
                                         batch_input_shape=(64, 64), scale_factor=(1., 1.)))
    masks = torch.zeros(1, 64, 64, dtype=torch.bool)
    masks[0, 10:40, 12:30] = True
    from mmdet.structures.mask import BitmapMasks
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[12., 10., 30., 40.]]),
                                       labels=torch.tensor([3]),
                                       masks=BitmapMasks(masks.numpy(), 64, 64))
    losses = model.loss(torch.randn(1, 3, 64, 64), [sample])
    total = sum(v.sum() for k, v in losses.items() if 'loss' in k and torch.is_tensor(v))
    total.backward()
    assert torch.isfinite(total)
    assert model.backbone.stem[0].weight.grad is not None
