"""tools/analysis_tools/ttame_explain.py: PNG overlays of the T-TAME maps + AD/IC (metrics.json)."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import torch

from conftest import REPO, run_tool

TOY_CFG = osp.join(REPO, 'configs', 'ttame', 'ttame_resnet18-c32_1xb32-8e_toy-cls-64x64.py')


def _random_ttame_checkpoint(path):
    """A T-TAME model of the toy config with random weights (the tool must work on any)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmmask.registry import MODELS
    cfg = Config.fromfile(TOY_CFG)
    init_default_scope('mmpretrain')
    model_cfg = cfg.model.copy()
    model_cfg['classifier_checkpoint'] = None
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    with torch.no_grad():  # a map with structure: the fuser follows the layer2 activations
        model.attention.fuser.weight.normal_(0, 0.5)
    torch.save(dict(state_dict=model.state_dict()), path)
    return model.eval()


def test_ttame_explain_writes_overlays_and_metrics(tmp_path):
    ckpt = str(tmp_path / 'ttame.pth')
    model = _random_ttame_checkpoint(ckpt)
    img_dir = tmp_path / 'imgs'
    os.makedirs(img_dir / 'sub')
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        img = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
        img[8:24, 8:24] = 255 - img[8:24, 8:24] // 4
        p = str(img_dir / ('sub' if i == 2 else '') / f'im{i}.png')
        cv2.imwrite(p, img)
        paths.append(p)
    out = str(tmp_path / 'out')
    proc = run_tool(['analysis_tools/ttame_explain.py', TOY_CFG, ckpt, str(img_dir), '--out', out,
                     '--device', 'cpu'], cwd=str(tmp_path), env=dict(OMP_NUM_THREADS='1'))
    assert 'Explanation metrics:' in proc.stdout
    with open(osp.join(out, 'metrics.json')) as f:
        result = json.load(f)
    assert result['summary']['num_images'] == 3
    for key in ('AD@100%', 'IC@100%', 'AD@50%', 'IC@50%', 'AD@15%', 'IC@15%'):
        assert key in result['summary']
    assert 0 <= result['summary']['AD@15%'] <= 100

    # the overlay is the model's map of its predicted class over the (64 px) test image
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.config import Config
    pipeline = Compose(Config.fromfile(TOY_CFG).test_dataloader.dataset.pipeline)
    for rec in result['images']:
        png = cv2.imread(rec['png'])[..., ::-1]
        assert png.shape == (64, 128, 3)
        data = pseudo_collate([pipeline(dict(img_path=rec['image']))])
        with torch.no_grad():
            out_m = model.explain(model.data_preprocessor(data, False)['inputs'])
        assert rec['pred_label'] == int(out_m['labels'][0])
        img_rgb = data['inputs'][0].permute(1, 2, 0).numpy()[..., ::-1]
        assert np.abs(png[:, :64].astype(int) - img_rgb.astype(int)).max() <= 1
        heat = out_m['a'][0, rec['pred_label']].numpy()
        heat = cv2.resize(heat, (64, 64), interpolation=cv2.INTER_LINEAR)
        heat = (heat - heat.min()) / (heat.max() - heat.min() + 1e-10)
        colour = cv2.applyColorMap(np.uint8(255 * heat), cv2.COLORMAP_JET)[..., ::-1]
        expected = cv2.addWeighted(colour, 0.5, np.ascontiguousarray(img_rgb), 0.5, 0)
        assert np.abs(png[:, 64:].astype(int) - expected.astype(int)).mean() < 1.0
        assert np.abs(png[:, 64:].astype(int) - png[:, :64].astype(int)).mean() > 5
