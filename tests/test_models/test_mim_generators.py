"""One masking library, every objective: each toy pretraining config runs a training step with
every compatible generator swapped in by config, and an incompatible one stops with an error that
names what fits."""
import copy
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmpretrain.structures import DataSample

import mmmask  # noqa: F401
from mmmask.registry import MODELS

from conftest import REPO

RANDOM = dict(type='mmmask.RandomMasking', ratio=0.75)
SORTED = dict(type='mmmask.RandomMasking', ratio=0.75, sort_keep=True)
BLOCK_EXACT = dict(type='mmmask.BlockwiseMasking', ratio=0.5, min_num_patches=2, exact=True)
BLOCK = dict(type='mmmask.BlockwiseMasking', ratio=0.5, min_num_patches=2)
COARSE = dict(type='mmmask.CoarseRandomMasking', ratio=0.5, mask_patch_size=16,
              model_patch_size=8)
PROGRESSIVE = dict(type='mmmask.ProgressiveRedundantMasking', start_ratio=0.5, end_ratio=0.75)
GMML = dict(type='mmmask.GMMLCorruption')
HARD = dict(type='mmmask.HardPatchMasking', ratio=0.75)
ATTENTION = dict(type='mmmask.AttentionGuidedMasking', ratio=0.75)


def double(g):
    return dict(type='mmmask.DoubleMasking', generator=g)


#: (config folder, generators that must work, (generator, error match) that must be refused)
CASES = {
    'hpm': ([HARD, RANDOM, SORTED, BLOCK_EXACT, COARSE], [(GMML, 'images')]),
    'hi_end_mae': ([RANDOM, SORTED, BLOCK_EXACT, COARSE], [(HARD, 'scores')]),
    'maskalign': ([ATTENTION, RANDOM, BLOCK_EXACT, COARSE, PROGRESSIVE], [(HARD, 'scores')]),
    'cmae': ([double(RANDOM), double(BLOCK_EXACT), double(COARSE)], [(RANDOM, 'DoubleMasking')]),
    'gmml': ([GMML, RANDOM, BLOCK, COARSE], [(HARD, 'scores')]),
    'mto': ([COARSE, RANDOM, BLOCK], [(GMML, 'images')]),
}


def toy_config(method):
    paths = glob.glob(osp.join(REPO, 'configs', method, '*_toy-pretrain.py'))
    assert len(paths) == 1, paths
    return Config.fromfile(paths[0])


def train_step(cfg, generator):
    init_default_scope('mmpretrain')
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg['mask_generator'] = generator
    model_cfg.pop('init_cfg', None)
    if 'teacher' in model_cfg and isinstance(model_cfg['teacher'], dict):
        model_cfg['teacher'].pop('init_cfg', None)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    optim = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    imgs = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    data = dict(inputs=imgs, data_samples=[DataSample().set_gt_label(0) for _ in range(4)])
    return model.train_step(data, optim)


@pytest.fixture(autouse=True)
def progress():
    hub = MessageHub.get_current_instance()
    for key, value in (('epoch', 0), ('max_epochs', 2), ('iter', 0), ('max_iters', 10)):
        hub.update_info(key, value)
    yield
    for key, value in (('epoch', 0), ('max_epochs', 1), ('iter', 0), ('max_iters', 1)):
        hub.update_info(key, value)


@pytest.mark.parametrize('method,index', [(m, i) for m, (ok, _) in CASES.items()
                                          for i in range(len(ok))])
def test_objective_runs_with_generator(method, index):
    generator = CASES[method][0][index]
    losses = train_step(toy_config(method), generator)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total), losses


@pytest.mark.parametrize('method', list(CASES))
def test_incompatible_generator_is_refused(method):
    for generator, match in CASES[method][1]:
        with pytest.raises(ValueError, match=match):
            train_step(toy_config(method), generator)
