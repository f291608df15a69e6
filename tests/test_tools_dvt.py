"""DVT tools: ``tools/analysis_tools/dvt_denoise.py`` (raw vs denoised PCA PNGs) and
``tools/analysis_tools/dvt_fit.py`` (stage 1 + stage 2 on a folder of images)."""
import importlib.util
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from conftest import REPO, run_tool

DATA = osp.join(REPO, 'tests', 'data', 'parity', 'dvt')
TOY_SEG = osp.join(REPO, 'configs', 'dvt', 'dvt_vit-tiny-p8_linear_toy-seg-64x64.py')
VIT_CFG = """
model = dict(type='ImageClassifier',
             backbone=dict(type='VisionTransformer',
                           arch=dict(embed_dims=64, num_layers=2, num_heads=2,
                                     feedforward_channels=128),
                           img_size=40, patch_size=8),
             head=None)
data_preprocessor = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                         to_rgb=True)
"""


def _tool(name):
    spec = importlib.util.spec_from_file_location(
        name, osp.join(REPO, 'tools', 'analysis_tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def setup(tmp_path):
    cfg = tmp_path / 'vit.py'
    cfg.write_text(VIT_CFG)
    torch.manual_seed(0)
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        from mmpretrain.registry import MODELS
        model = MODELS.build(dict(type='ImageClassifier', backbone=dict(
            type='VisionTransformer', arch=dict(embed_dims=64, num_layers=2, num_heads=2,
                                                feedforward_channels=128),
            img_size=40, patch_size=8), head=None))
    ckpt = tmp_path / 'vit.pth'
    torch.save({'state_dict': model.state_dict()}, str(ckpt))
    # an official stage-2 checkpoint (main_denoiser.py layout) for 64-d features, 5x5 grid
    fx = torch.load(osp.join(DATA, 'dvt_denoiser_upsampled_pe_chfirst.pt'), weights_only=False)
    den = tmp_path / 'official_denoiser.pth'
    torch.save({'denoiser': fx['state_dict'], 'optimizer': {}}, str(den))
    images = tmp_path / 'images'
    images.mkdir()
    rng = np.random.RandomState(0)
    for i in range(3):
        img = cv2.GaussianBlur(rng.randint(0, 255, (48, 56, 3)).astype(np.uint8), (7, 7), 3)
        cv2.imwrite(str(images / f'img{i}.png'), img)
    return dict(cfg=str(cfg), ckpt=str(ckpt), den=str(den), images=str(images), tmp=tmp_path)


def test_dvt_denoise_writes_differing_pngs(setup):
    tool = _tool('dvt_denoise')
    out = setup['tmp'] / 'out'
    res = tool.main([setup['cfg'], setup['ckpt'], setup['images'], '--out', str(out),
                     '--denoiser', setup['den'], '--stage1', '--num-views', '6',
                     '--stage1-iters', '15', '--pixel-bsz', '128', '--field', 'fourier',
                     '--device', 'cpu'])
    assert len(res['images']) == 3
    for rec in res['images']:
        png = cv2.imread(rec['png'])
        # image | raw | stage-2 denoised | stage-1 denoised | stage-1 artifact, 40 px each + gaps
        assert png.shape == (40, 5 * 40 + 4 * 2, 3)
        raw, den = png[:, 42:82], png[:, 84:124]
        assert np.abs(raw.astype(int) - den.astype(int)).mean() > 5  # the denoiser changed them
        assert rec['change'] > 0.05
    stats = json.loads((out / 'stats.json').read_text())['summary']
    assert 0 <= stats['position_variance_raw'] <= 1
    assert stats['position_variance_raw'] != stats['position_variance_denoised']


def test_dvt_denoise_errors(setup):
    tool = _tool('dvt_denoise')
    with pytest.raises(ValueError, match='--denoiser'):
        tool.main([setup['cfg'], setup['ckpt'], setup['images'], '--out',
                   str(setup['tmp'] / 'o'), '--device', 'cpu'])
    with pytest.raises(FileNotFoundError, match='none'):
        tool.main([setup['cfg'], 'missing.pth', setup['images'], '--out',
                   str(setup['tmp'] / 'o'), '--denoiser', setup['den'], '--device', 'cpu'])
    with pytest.raises(ValueError, match='multiple of the patch size'):
        tool.main([setup['cfg'], setup['ckpt'], setup['images'], '--out',
                   str(setup['tmp'] / 'o'), '--denoiser', setup['den'], '--input-size', '30',
                   '30', '--device', 'cpu'])
    # the image listing shared by the analysis tools (mmmask.apis.list_images)
    with pytest.raises(FileNotFoundError, match='no such image file or folder'):
        tool.main([setup['cfg'], setup['ckpt'], str(setup['tmp'] / 'absent'), '--out',
                   str(setup['tmp'] / 'o'), '--denoiser', setup['den'], '--device', 'cpu'])
    (setup['tmp'] / 'empty').mkdir(exist_ok=True)
    with pytest.raises(FileNotFoundError, match='no images'):
        tool.main([setup['cfg'], setup['ckpt'], str(setup['tmp'] / 'empty'), '--out',
                   str(setup['tmp'] / 'o'), '--denoiser', setup['den'], '--device', 'cpu'])


def test_dvt_fit_then_denoised_vit(setup):
    """Stage 1 + 2 on three images; the written denoiser loads into a DenoisedViT by config and
    into dvt_denoise.py (toy DenoisedViT config, CLI)."""
    work = setup['tmp'] / 'fit'
    stats = _tool('dvt_fit').main([
        setup['cfg'], setup['ckpt'], setup['images'], '--work-dir', str(work),
        '--num-views', '6', '--stage1-iters', '15', '--pixel-bsz', '128', '--field', 'fourier',
        '--stage2-iters', '5', '--batch-size', '2', '--lr', '1e-3', '--device', 'cpu'])
    assert stats['num_images'] == 3 and len(list((work / 'features').glob('*.pt'))) == 3
    assert 'position_variance_stage2' in stats
    from mmmask.models.backbones.denoised_vit import DenoisedViT
    model = DenoisedViT(vit=dict(type='mmpretrain.VisionTransformer',
                                 arch=dict(embed_dims=64, num_layers=2, num_heads=2,
                                           feedforward_channels=128),
                                 img_size=40, patch_size=8),
                        denoiser_checkpoint=str(work / 'denoiser.pth'))
    model.init_weights()
    saved = torch.load(str(work / 'denoiser.pth'))['state_dict']
    torch.testing.assert_close(model.denoiser.pos_embed, saved['pos_embed'])

    proc = run_tool(['analysis_tools/dvt_denoise.py', TOY_SEG, 'none', setup['images'],
                     '--out', str(setup['tmp'] / 'toy'), '--device', 'cpu', '--cfg-options',
                     'model.backbone.vit.init_cfg=None', 'model.backbone.denoiser_checkpoint=None'],
                    cwd=str(setup['tmp']), env=dict(OMP_NUM_THREADS='1'))
    assert 'position_variance_denoised=' in proc.stdout
    assert len(list((setup['tmp'] / 'toy').glob('*_dvt.png'))) == 3


def test_dvt2mmmask_converter(tmp_path):
    spec = importlib.util.spec_from_file_location(
        'dvt2mmmask', osp.join(REPO, 'tools', 'model_converters', 'dvt2mmmask.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    fx = torch.load(osp.join(DATA, 'dvt_denoiser_same_grid.pt'), weights_only=False)
    src = tmp_path / 'official.pth'
    torch.save({'denoiser': fx['state_dict'], 'optimizer': {}}, str(src))
    dst = tmp_path / 'ours.pth'
    tool.main([str(src), str(dst)])
    saved = torch.load(str(dst))['state_dict']
    assert 'backbone.denoiser.blocks.0.ffn.layers.1.weight' in saved
    from mmmask.models.converters.dvt import load_dvt_denoiser_checkpoint
    from mmmask.models.layers.dvt import DVTDenoiser
    den = DVTDenoiser(6, 128)
    den.load_state_dict(load_dvt_denoiser_checkpoint(str(dst)))
    with torch.no_grad():
        torch.testing.assert_close(den(fx['inputs']['x']), fx['outputs']['forward'],
                                   atol=1e-5, rtol=1e-5)
    # the toy DenoisedViT config has a 128-d denoiser on an 8x8 grid: pos_embed does not fit
    from mmmask.models.converters.common import ConversionError
    with pytest.raises(ConversionError, match='pos_embed'):
        tool.main([str(src), str(tmp_path / 'x.pth'), '--config', TOY_SEG])
    with pytest.raises(SystemExit, match='no such checkpoint'):
        tool.main([str(tmp_path / 'missing.pth'), str(dst)])
