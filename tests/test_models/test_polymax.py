"""PolyMaX: cluster-prediction heads and the multi-task segmentor (fast tests)."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

import mmmask.models  # noqa: F401
from mmmask.models.heads.polymax_head import cluster_mixture
from mmmask.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_MODEL = osp.join(REPO, 'configs/_base_/models/polymax_r18-toy.py')


def toy_model_cfg(**heads):
    cfg = copy.deepcopy(Config.fromfile(TOY_MODEL).model)
    for task, head in heads.items():
        cfg.heads[task] = head
    return cfg


def toy_sample(h=64, w=64, seed=0, flip=False):
    g = torch.Generator().manual_seed(seed)
    sample = SegDataSample(metainfo=dict(ori_shape=(h, w), img_shape=(h, w), pad_shape=(h, w),
                                         padding_size=[0, 0, 0, 0], flip=flip,
                                         flip_direction='horizontal' if flip else None))
    sem = torch.randint(0, 12, (1, h, w), generator=g)
    sem[:, : h // 4] = 255
    depth = torch.rand(1, h, w, generator=g) * 9 + 0.5
    normal = torch.nn.functional.normalize(torch.randn(3, h, w, generator=g), dim=0)
    sample.gt_sem_seg = PixelData(data=sem)
    sample.gt_depth_map = PixelData(data=depth)
    sample.gt_normal_map = PixelData(data=normal)
    return sample


def test_cluster_mixture_one_hot_returns_cluster_value():
    logits = torch.full((1, 3, 2, 2), -1e4)
    logits[0, 1, 0, 0] = logits[0, 2, 0, 1] = logits[0, 0, 1] = 0
    values = torch.tensor([[[1.0, 0.], [2.0, 0.], [3.0, 1.]]])
    mix = cluster_mixture(logits, values)
    assert torch.allclose(mix[0, 0], torch.tensor([[2.0, 3.0], [1.0, 1.0]]))
    assert torch.allclose(mix[0, 1], torch.tensor([[0.0, 1.0], [0.0, 0.0]]))


@pytest.mark.parametrize('mode', ['bins', 'sigmoid'])
def test_depth_cluster_values_stay_in_range(mode):
    head = MODELS.build(dict(type='mmmask.PolyMaXDepthHead', value_mode=mode, min_depth=0.5,
                             max_depth=4.0, decoder=toy_model_cfg().heads.depth.decoder))
    z = torch.randn(2, 16, 1, generator=torch.Generator().manual_seed(0)) * 2
    c = head.cluster_values(z)
    assert c.shape == (2, 16, 1)
    assert (c >= 0.5).all() and (c <= 4.0).all()
    if mode == 'bins':  # AdaBins centres: increasing with the cluster index
        assert (c[:, 1:] > c[:, :-1]).all()


def test_depth_head_rejects_bad_config():
    dec = toy_model_cfg().heads.depth.decoder
    with pytest.raises(ValueError, match='value_mode'):
        MODELS.build(dict(type='mmmask.PolyMaXDepthHead', value_mode='log', decoder=dec))
    with pytest.raises(ValueError, match='min_depth'):
        MODELS.build(dict(type='mmmask.PolyMaXDepthHead', min_depth=5, max_depth=1, decoder=dec))


def test_multitask_loss_and_predict():
    torch.manual_seed(0)
    model = MODELS.build(toy_model_cfg())
    assert model.tasks == ['semantic', 'depth', 'normal']
    samples = [toy_sample(seed=0), toy_sample(seed=1)]
    data = dict(inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)] * 2,
                data_samples=samples)
    data = model.data_preprocessor(data, training=True)
    losses = model(**data, mode='loss')
    for task in ('semantic', 'depth', 'normal'):
        assert any(k.startswith(task + '.') for k in losses)
    # deep supervision: one copy of the depth loss per decoder layer (3 in the toy model)
    assert {k for k in losses if k.endswith('loss_depth')} == {
        'depth.loss_depth', 'depth.d0.loss_depth', 'depth.d1.loss_depth', 'depth.d2.loss_depth'}
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in model.heads.depth.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)

    model.eval()
    with torch.no_grad():
        out = model.test_step(dict(inputs=[torch.randint(0, 255, (3, 64, 64),
                                                         dtype=torch.uint8)],
                                   data_samples=[toy_sample(seed=2)]))[0]
    assert out.pred_sem_seg.data.shape == (1, 64, 64)
    assert out.seg_logits.data.shape == (12, 64, 64)
    depth = out.pred_depth_map.data
    assert depth.shape == (1, 64, 64) and (depth > 0).all() and (depth <= 10).all()
    normal = out.pred_normal_map.data
    assert normal.shape == (3, 64, 64)
    assert torch.allclose(normal.norm(dim=0), torch.ones(64, 64), atol=1e-4)


def test_single_task_by_dropping_heads():
    model = MODELS.build(toy_model_cfg(semantic=None, normal=None))
    assert model.tasks == ['depth']
    with pytest.raises(ValueError, match='at least one head'):
        MODELS.build(toy_model_cfg(semantic=None, normal=None, depth=None))
    with pytest.raises(ValueError, match='unknown PolyMaX task'):
        MODELS.build(toy_model_cfg(edges=dict(type='mmmask.PolyMaXDepthHead')))


def test_missing_ground_truth_names_the_pipeline_fix():
    model = MODELS.build(toy_model_cfg(semantic=None, depth=None))
    sample = toy_sample()
    del sample.gt_normal_map
    data = model.data_preprocessor(dict(inputs=[torch.zeros(3, 64, 64, dtype=torch.uint8)],
                                        data_samples=[sample]), training=True)
    with pytest.raises(ValueError, match='LoadNormalAnnotation'):
        model(**data, mode='loss')


def test_postprocess_undoes_flip_and_negates_normal_x():
    model = MODELS.build(toy_model_cfg(semantic=None))
    normal = torch.nn.functional.normalize(torch.randn(1, 3, 4, 6), dim=1)
    depth = torch.rand(1, 1, 4, 6) + 1
    sample = SegDataSample(metainfo=dict(ori_shape=(4, 6), flip=True,
                                         flip_direction='horizontal', padding_size=[0, 0, 0, 0]))
    out = model.postprocess_result(dict(depth=depth, normal=normal), [sample])[0]
    assert torch.allclose(out.pred_depth_map.data, depth[0].flip(-1))
    expected = normal[0].flip(-1).clone()
    expected[0] = -expected[0]
    assert torch.allclose(out.pred_normal_map.data, expected, atol=1e-6)
    # padding is removed before resizing back to ori_shape
    sample = SegDataSample(metainfo=dict(ori_shape=(4, 4), padding_size=[0, 2, 0, 0]))
    out = model.postprocess_result(dict(depth=depth, normal=normal), [sample])[0]
    assert torch.allclose(out.pred_depth_map.data, depth[0, :, :, :4])
