"""tools/analysis_tools/foraug_prepare.py and foraug_bias_eval.py (ForAug, arXiv 2503.09399)."""
import importlib.util
import json
import os.path as osp

import cv2
import numpy as np
import pytest

from conftest import REPO

CONFIG = osp.join(REPO, 'configs', 'quickstart', 'resnet18-c32_1xb32-10e_toy-cls-64x64.py')


def _tool(name):
    spec = importlib.util.spec_from_file_location(
        name, osp.join(REPO, 'tools', 'analysis_tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _image_folder(root, classes=3, per_class=3, size=48):
    for c in range(classes):
        for i in range(per_class):
            rng = np.random.RandomState(10 * c + i)
            img = rng.randint(0, 120, (size, size, 3), dtype=np.uint8)
            mask = np.zeros((size, size), np.uint8)
            y, x = rng.randint(0, size - 16, 2)
            mask[y:y + 16, x:x + 16] = 255
            img[mask > 0] = (30 + 80 * c, 200, 240)
            for sub, data in (('images', img), ('masks', mask)):
                path = osp.join(root, sub, f'{c}', f'im{i}.png')
                (root / sub / f'{c}').mkdir(parents=True, exist_ok=True)
                cv2.imwrite(path, data)
    # an image whose mask is empty: no detection
    cv2.imwrite(str(root / 'images' / '0' / 'empty.png'), np.zeros((size, size, 3), np.uint8))
    cv2.imwrite(str(root / 'masks' / '0' / 'empty.png'), np.zeros((size, size), np.uint8))


def test_prepare_from_given_masks(tmp_path):
    _image_folder(tmp_path)
    out = tmp_path / 'fornet'
    res = _tool('foraug_prepare').main([str(tmp_path / 'images'), str(out), '--split', 'val',
                                        '--masks', str(tmp_path / 'masks'), '--blur-radius', '1'])
    assert res['written'] == 9 and res['no_detect'] == ['0/empty']
    ratios = json.loads((out / 'fg_bg_ratios_val.json').read_text())
    assert ratios['1/im2.jpg'] == pytest.approx(16 * 16 / 48**2)
    fg = cv2.imread(str(out / 'val' / 'foregrounds' / '1' / 'im2.png'), cv2.IMREAD_UNCHANGED)
    assert fg.shape == (16, 16, 4) and (fg[..., :3] == (110, 200, 240)).all()
    with pytest.raises(SystemExit):
        _tool('foraug_prepare').main([str(tmp_path / 'images'), str(out)])  # no mask source


def test_bias_eval_tool_on_an_mmpretrain_resnet(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _image_folder(tmp_path)
    out = tmp_path / 'fornet'
    _tool('foraug_prepare').main([str(tmp_path / 'images'), str(out), '--split', 'val',
                                  '--masks', str(tmp_path / 'masks'), '--blur-radius', '1'])
    res = _tool('foraug_bias_eval').main([
        CONFIG, 'none', str(out), '--max-samples', '6', '--ig-steps', '2', '--size-facts', '0.5',
        '1.0', '--out-dir', str(tmp_path / 'eval'), '--num-examples', '3'
    ])
    saved = json.loads((tmp_path / 'eval' / 'foraug_bias.json').read_text())
    assert saved['input_size'] == 64 and saved['num_samples'] == 6
    for key in ('acc_same', 'acc_all', 'background_robustness', 'foreground_focus',
                'center_bias', 'size_bias'):
        assert key in saved
    assert len(saved['nonant_acc']) == 9 and res['classes'] == ['0', '1', '2']
    assert np.isfinite(saved['foreground_focus'])
    for name in ('composites.png', 'center_bias.png'):
        assert (tmp_path / 'eval' / name).stat().st_size > 2000
    gc = _tool('foraug_bias_eval').main([
        CONFIG, 'none', str(out), '--metrics', 'focus', '--attribution', 'gradcam',
        '--gradcam-layer', 'backbone.layer4', '--max-samples', '3', '--canvas-size', '96',
        '--out-dir', str(tmp_path / 'eval2')
    ])
    assert gc['method'] == 'gradcam' and 'foreground_focus' in gc  # untrained: CAMs may be 0


@pytest.mark.slow
def test_toy_foraug_config_trains_through_tools_train(tmp_path):
    """The toy ForAug config end to end in the real runner (toy ForNet built on first use, the
    recombination pipeline in the train loader): two epochs, a checkpoint, a validation metric."""
    from conftest import NO_WORKERS, ONE_THREAD, final_metric, run_tool
    cfg = osp.join(REPO, 'configs', 'foraug', 'resnet18-c32_foraug_1xb32-10e_toy-fornet-64x64.py')
    proc = run_tool(['train.py', cfg, '--work-dir', str(tmp_path / 'run'), '--cfg-options',
                     'train_cfg.max_epochs=2', 'train_cfg.val_interval=2', 'randomness.seed=0',
                     'val_dataloader.dataset.indices=64'] + NO_WORKERS,
                    cwd=str(tmp_path), env=ONE_THREAD, timeout=900)
    assert 0.0 <= final_metric(proc.stdout + proc.stderr, 'accuracy/top1') <= 100.0
    assert (tmp_path / 'run' / 'epoch_2.pth').is_file()
    assert osp.isfile(tmp_path / 'data' / 'toy' / 'fornet' / 'fg_bg_ratios_train.json')
