"""T-TAME learns to explain: a short T-TAME training (3 of the toy config's 8 epochs, ~45 s) on the
toy ResNet-18 (the ``toy_resnet18`` session fixture) gives explanation maps that point at the digit
more often than random maps and whose kept regions preserve the classifier's confidence far better
(Average Drop) than random maps of the same size."""
import os.path as osp

import numpy as np
import pytest
import torch

from conftest import NO_WORKERS, ONE_THREAD, REPO, final_metric, run_tool

TOY_CFG = osp.join(REPO, 'configs', 'ttame', 'ttame_resnet18-c32_1xb32-8e_toy-cls-64x64.py')
EPOCHS = 3


def _digit_crops(n: int, seed: int = 123):
    """Toy classification crops (as ``render_digit_crop``, val split) with their digit boxes."""
    import cv2

    from mmmask.datasets.toy.scenes import digit_pool, render_scene
    rng = np.random.default_rng(seed)
    pool = digit_pool('val')
    images, boxes = [], []
    for _ in range(n):
        gi = int(rng.choice(pool))
        s = int(rng.integers(32 * 5 // 8, 32 * 7 // 8 + 1))
        top, left = (int(rng.integers(0, 32 - s + 1)) for _ in range(2))
        scene = render_scene(rng, 'val', 32, digits=[(gi, s, top, left)])
        img = cv2.resize(scene.image, (64, 64), interpolation=cv2.INTER_LINEAR)  # test pipeline
        box = np.zeros((64, 64), bool)
        box[2 * top:2 * (top + s), 2 * left:2 * (left + s)] = True
        images.append(torch.from_numpy(img).permute(2, 0, 1))  # the toy PNGs store this order
        boxes.append(torch.from_numpy(box))
    return images, torch.stack(boxes)


@pytest.mark.slow
def test_ttame_maps_localise_the_digit(toy_resnet18, workdir):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    from mmmask.evaluation.explanation.ttame import average_drop, localisation_scores
    from mmmask.models.classifiers.ttame import min_max_normalize, quantile_masked_inputs
    from mmmask.registry import MODELS

    work = osp.join(workdir, 'ttame')
    proc = run_tool(['train.py', TOY_CFG, '--work-dir', work, '--cfg-options',
                     f'model.classifier_checkpoint={toy_resnet18}',
                     f'train_cfg.max_epochs={EPOCHS}',
                     f'train_cfg.val_interval={EPOCHS}', f'param_scheduler.0.end={EPOCHS}',
                     f'default_hooks.checkpoint.interval={EPOCHS}', 'randomness.seed=0',
                     'val_dataloader.dataset.indices=256'] + NO_WORKERS,
                    cwd=workdir, env=ONE_THREAD, timeout=1200)
    ad15 = final_metric(proc.stdout, 'explain/AD@15')

    cfg = Config.fromfile(TOY_CFG)
    init_default_scope('mmpretrain')
    model_cfg = cfg.model.copy()
    model_cfg['classifier_checkpoint'] = None
    model = MODELS.build(model_cfg)
    load_checkpoint(model, osp.join(work, f'epoch_{EPOCHS}.pth'), map_location='cpu', strict=True)
    model.eval()

    images, boxes = _digit_crops(128)
    torch.manual_seed(0)
    with torch.no_grad():
        inputs = model.data_preprocessor(dict(inputs=images), False)['inputs']
        out = model.explain(inputs)
        labels = out['labels']
        idx = torch.arange(len(labels))
        maps = out['a'][idx, labels]
        rand = torch.rand_like(maps)
        ours = localisation_scores(maps, boxes)
        chance = localisation_scores(rand, boxes)
        # AD with 100 / 50 / 15 % of the map kept: T-TAME's map vs a random map of the same size
        y = out['logits'].softmax(1)[idx, labels]
        raw = model.to_raw(inputs)
        ad = {}
        for name, m in (('ttame', out['c'][idx, labels]), ('random', rand)):
            masked = quantile_masked_inputs(raw, min_max_normalize(m[:, None]), [0.0, 0.5, 0.85])
            ad[name] = []
            for x in masked:
                o = model._run(model.from_raw(x), capture=False)[0].softmax(1)[idx, labels]
                ad[name].append(float(average_drop(y, o)))
    msg = f'T-TAME {ours}, random {chance}, AD@100/50/15 {ad}, val AD@15 {ad15}'
    print(msg)
    # our run (seed 0): ratio 1.18 vs 1.00, pointing 0.56 vs 0.32, AD 55/65/78 vs 81/83/85
    assert ours['inside_outside_ratio'] > 1.05, msg
    assert ours['pointing'] > chance['pointing'] + 0.1, msg
    assert ad['ttame'][0] < ad['random'][0] - 10 and ad['ttame'][1] < ad['random'][1] - 8, msg
    assert ad['ttame'][2] < ad['random'][2], msg
