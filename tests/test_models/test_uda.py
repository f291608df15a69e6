"""DACS UDA segmentor (mmmask.DACS) and the UDA dataset with rare class sampling."""
import copy

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmmask.datasets.uda import UDADataset, rcs_class_probs
from mmmask.models.segmentors.uda import (class_mix_masks, downscale_label_ratio, ema_alpha,
                                          pseudo_label_weight)
from mmmask.registry import MODELS

NUM_CLASSES = 4
PRE = dict(type='mmseg.SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0, seg_pad_val=255,
           size=(32, 32))
STUDENT = dict(
    type='mmseg.EncoderDecoder',
    data_preprocessor=PRE,
    backbone=dict(type='mmseg.ResNetV1c', depth=18, stem_channels=8, base_channels=8,
                  num_stages=4, out_indices=(0, 1, 2, 3), strides=(1, 2, 2, 2),
                  norm_cfg=dict(type='BN', requires_grad=True)),
    decode_head=dict(type='mmseg.FCNHead', in_channels=64, in_index=3, channels=16, num_convs=1,
                     concat_input=False, dropout_ratio=0.0, num_classes=NUM_CLASSES,
                     norm_cfg=dict(type='BN', requires_grad=True),
                     loss_decode=dict(type='mmseg.CrossEntropyLoss', loss_weight=1.0)),
    train_cfg=dict(), test_cfg=dict(mode='whole'))


def build_dacs(student: dict = STUDENT, **kwargs):
    torch.manual_seed(0)
    model = MODELS.build(dict(type='mmmask.DACS', model=copy.deepcopy(student), **kwargs))
    model.init_weights()
    return model


def fake_batch(n=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)

    def samples(with_gt):
        out = []
        for _ in range(n):
            s = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
            if with_gt:
                lbl = torch.randint(0, NUM_CLASSES, (1, size // 8, size // 8), generator=g)
                s.gt_sem_seg = PixelData(data=lbl.repeat_interleave(8, 1).repeat_interleave(8, 2))
            out.append(s)
        return out

    imgs = lambda: [torch.randint(0, 256, (3, size, size), generator=g).to(torch.uint8)
                    for _ in range(n)]
    return dict(inputs=imgs(), data_samples=samples(True), target_inputs=imgs(),
                target_data_samples=samples(False))


def test_ema_alpha_schedule_and_update():
    assert ema_alpha(0, 0.999) == 0.0
    assert ema_alpha(1, 0.999) == 0.5
    assert ema_alpha(9, 0.999) == pytest.approx(0.9)
    assert ema_alpha(5000, 0.999) == 0.999
    model = build_dacs(alpha=0.99)
    teacher = [p.clone() for p in model.teacher.parameters()]
    with torch.no_grad():
        for p in model.model.parameters():
            p.add_(1.0)
    model.update_teacher(3)  # alpha = min(1 - 1/4, 0.99) = 0.75
    for t0, t, s in zip(teacher, model.teacher.parameters(), model.model.parameters()):
        torch.testing.assert_close(t, 0.75 * t0 + 0.25 * s)
    assert int(model.ema_step) == 3
    assert 'ema_step' in model.state_dict() and 'local_iter' in model.state_dict()


def test_pseudo_label_weight_is_confident_fraction():
    probs = torch.full((2, 3, 4, 5), 0.1)
    probs[:, 0] = 0.8
    probs[0, 1, :2, :] = 0.99  # 10 of 40 pixels confident, labelled 1
    labels, weight = pseudo_label_weight(probs, 0.968)
    assert (labels[0, :2] == 1).all() and (labels[0, 2:] == 0).all() and (labels[1] == 0).all()
    assert torch.allclose(weight, torch.full_like(weight, 10 / 40))
    _, weight = pseudo_label_weight(probs, 0.968, ignore_top=1, ignore_bottom=2)
    assert (weight[:, 0] == 0).all() and (weight[:, -2:] == 0).all()
    assert torch.allclose(weight[:, 1], torch.full_like(weight[:, 1], 0.25))


@pytest.mark.parametrize('n_classes', [1, 2, 3, 5])
def test_class_mix_picks_half_the_classes(n_classes):
    label = torch.arange(n_classes).repeat_interleave(4).reshape(1, n_classes, 4).expand(2, -1, -1)
    label = label.clone()
    label[1, 0, 0] = 255  # the ignore index is not a class
    masks = class_mix_masks(label, 255, np.random.default_rng(0))
    for lbl, mask in zip(label, masks):
        picked = torch.unique(lbl[mask.bool()])
        assert len(picked) == (n_classes + n_classes % 2) // 2
        assert 255 not in picked.tolist()
        # whole classes only: a class is either fully pasted or not at all
        for c in picked:
            assert mask[lbl == c].all()
        assert not mask[~torch.isin(lbl, picked)].any()


def test_mixed_image_and_label_are_consistent():
    model = build_dacs(blur=False, color_jitter_probability=1.1)  # no strong aug: pure mix
    data = model.data_preprocessor(fake_batch(), True)
    captured = {}
    orig = model._student_losses

    def spy(inputs, data_samples, pixel_weight=None):
        if pixel_weight is not None:
            captured.update(img=inputs, lbl=torch.stack([s.gt_sem_seg.data[0]
                                                         for s in data_samples]),
                            w=pixel_weight)
        return orig(inputs, data_samples, pixel_weight)

    model._student_losses = spy
    model.loss(**data)
    src, tgt = data['inputs'], data['target_inputs']
    gt = torch.stack([s.gt_sem_seg.data[0] for s in data['data_samples']])
    from_src = (captured['img'] == src).all(1) & (captured['lbl'] == gt) & (captured['w'] == 1)
    from_tgt = (captured['img'] == tgt).all(1)
    assert (from_src | from_tgt).all()
    assert from_src.any() and from_tgt.any()
    for b in range(gt.shape[0]):  # source pixels come in whole classes
        for c in torch.unique(gt[b][from_src[b]]):
            assert from_src[b][gt[b] == c].all()


def test_teacher_frozen_not_in_optimizer_and_train_step():
    model = build_dacs(alpha=0.999)
    model.train()
    # DAFormer: the teacher's BN uses batch statistics, its dropout never drops
    assert model.teacher.training
    assert all(not m.training for m in model.teacher.modules()
               if isinstance(m, torch.nn.modules.dropout._DropoutNd))
    assert all(not p.requires_grad for p in model.teacher.parameters())
    optim = build_optim_wrapper(model, dict(type='OptimWrapper',
                                            optimizer=dict(type='SGD', lr=0.1)))
    built = build_optim_wrapper(model, dict(
        type='OptimWrapper', optimizer=dict(type='AdamW', lr=0.1),
        constructor='mmmask.UDAOptimWrapperConstructor',
        paramwise_cfg=dict(custom_keys=dict(head=dict(lr_mult=10.0)))))
    built_ids = {id(p) for g in built.optimizer.param_groups for p in g['params']}
    assert built_ids == {id(p) for p in model.model.parameters()}
    student0 = [p.clone() for p in model.model.parameters()]
    teacher0 = [p.clone() for p in model.teacher.parameters()]
    log = model.train_step(fake_batch(), optim)
    assert 'decode.loss_ce' in log and 'mix.decode.loss_ce' in log
    in_optim = {id(p) for g in optim.optimizer.param_groups for p in g['params']}
    assert not in_optim & {id(p) for p in model.teacher.parameters()}
    assert {id(p) for p in model.model.parameters()} <= in_optim
    assert all(p.grad is None for p in model.teacher.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(student0, model.model.parameters()))
    # the first step copies the student into the teacher (DAFormer), and after the optimizer step
    # the teacher is the EMA (alpha(1) = 0.5) of that copy and the new student
    for s0, t0, t, s in zip(student0, teacher0, model.teacher.parameters(),
                            model.model.parameters()):
        torch.testing.assert_close(t, 0.5 * s0 + 0.5 * s)
    assert any(not torch.equal(t, t0) for t, t0 in zip(model.teacher.parameters(), teacher0))
    assert int(model.local_iter) == 1 and int(model.ema_step) == 1


def test_feature_distance():
    model = build_dacs(imnet_feature_dist_lambda=0.005)
    optim = build_optim_wrapper(model, dict(type='OptimWrapper',
                                            optimizer=dict(type='SGD', lr=0.1)))
    first = model.train_step(fake_batch(), optim)
    # the ImageNet model is the student's feature extractor at the first step: distance 0
    assert float(first['src.loss_imnet_feat_dist']) == 0.0
    second = model.train_step(fake_batch(seed=1), optim)
    assert float(second['src.loss_imnet_feat_dist']) > 0
    assert all(not p.requires_grad for p in model.imnet_model.parameters())
    assert all(torch.isfinite(p).all() for p in model.parameters())
    # thing-class masking: cells where none of the classes covers >= 75% count for nothing
    model.fdist_classes, model.fdist_scale_min_ratio = [1], 0.75
    feats = [torch.randn(1, 2, 2, 2, requires_grad=True)]
    with torch.no_grad():
        model.imnet_model.extract_feat = lambda x: [torch.zeros(1, 2, 2, 2)]
    gt = torch.zeros(1, 1, 4, 4, dtype=torch.long)
    gt[..., :2, :2] = 1  # only the top-left cell is class 1
    dist = model.feature_distance(torch.zeros(1, 3, 4, 4), gt, feats)
    torch.testing.assert_close(dist, 0.005 * feats[0][0, :, 0, 0].norm())
    assert float(model.feature_distance(torch.zeros(1, 3, 4, 4), gt * 0, feats)) == 0.0


def test_downscale_label_ratio():
    gt = torch.tensor([[[[1, 1, 2, 2], [1, 0, 2, 2], [255, 255, 3, 3], [255, 0, 3, 4]]]])
    out = downscale_label_ratio(gt, 2, 0.75, num_classes=5)
    assert out.tolist() == [[[[1, 2], [255, 3]]]]
    assert downscale_label_ratio(gt, 2, 0.5, num_classes=5).tolist() == [[[[1, 2], [255, 3]]]]


def test_predict_is_the_students():
    model = build_dacs().eval()
    data = model.data_preprocessor(
        dict(inputs=fake_batch()['inputs'],
             data_samples=[SegDataSample(metainfo=dict(img_shape=(32, 32), ori_shape=(32, 32)))
                           for _ in range(2)]), False)
    with torch.no_grad():
        with torch.no_grad():
            torch.nn.init.normal_(model.teacher.decode_head.conv_seg.weight)  # teacher differs
        ours = model(data['inputs'], copy.deepcopy(data['data_samples']), mode='predict')
        ref = model.model.predict(data['inputs'], copy.deepcopy(data['data_samples']))
        torch.testing.assert_close(model(data['inputs'], mode='tensor'),
                                   model.model(data['inputs'], mode='tensor'))
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a.seg_logits.data, b.seg_logits.data)
        assert torch.equal(a.pred_sem_seg.data, b.pred_sem_seg.data)


class _LabelOnly:
    """A tiny in-memory source: sample i has a constant label map of class labels[i]."""

    def __init__(self, labels, size=8):
        self.labels, self.size = labels, size
        self.metainfo = dict(classes=('a', 'b', 'c'))

    def __len__(self):
        return len(self.labels)

    def get_data_info(self, i):
        return dict(seg_map_path=f'{i}.png')

    def __getitem__(self, i):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.full((1, self.size, self.size), self.labels[i]))
        return dict(inputs=torch.zeros(3, self.size, self.size), data_samples=s)


def test_rcs_favours_rare_classes(tmp_path):
    labels = [0] * 90 + [1] * 9 + [2] * 1
    source = _LabelOnly(labels)
    stats = [{'file': f'{i}.png', str(c): 64} for i, c in enumerate(labels)]
    stats_file = tmp_path / 'sample_class_stats.json'
    stats_file.write_text(__import__('json').dumps(stats))
    for temp in (0.01, 0.5):
        ds = UDADataset(source, _LabelOnly([0, 1]), rare_class_sampling=dict(
            class_temp=temp, min_crop_ratio=0.5, min_pixels=10, stats_file=str(stats_file)))
        classes, probs = rcs_class_probs({0: 90 * 64, 1: 9 * 64, 2: 64}, temp)
        assert classes == [2, 1, 0] and probs[0] > probs[1] > probs[2]
        np.random.seed(0)
        drawn = [int(ds[0]['data_samples'].gt_sem_seg.data[0, 0, 0]) for _ in range(400)]
        freq = np.bincount(drawn, minlength=3)[[2, 1, 0]] / len(drawn)
        # uniform sampling would give 0.01 / 0.09 / 0.90 (rarest first)
        np.testing.assert_allclose(freq, probs, atol=0.06)
        assert freq[0] > (0.95 if temp == 0.01 else 0.4)
    batch = pseudo_collate([ds[0], ds[1]])
    assert set(batch) == {'inputs', 'data_samples', 'target_inputs', 'target_data_samples'}
    assert len(batch['target_inputs']) == 2


def test_rcs_stats_computed_from_toy_source_labels(tmp_path, monkeypatch):
    """Without a stats file the class statistics come from the source label maps (and are written
    to ``stats_file``); a second dataset reads them back."""
    import json
    import os.path as osp

    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    monkeypatch.chdir(tmp_path)
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(osp.dirname(__file__), '..', '..', 'configs', '_base_',
                                   'datasets', 'toy_uda.py'))
    source = dict(cfg.source_train, indices=12)
    target = dict(cfg.target_train, indices=4)
    stats_file = str(tmp_path / 'stats.json')
    rcs = dict(class_temp=0.1, min_crop_ratio=0.5, min_pixels=20, stats_file=stats_file)
    ds = UDADataset(source, target, rare_class_sampling=rcs)
    stats = json.load(open(stats_file))
    assert len(stats) == 12 and all(sum(v for k, v in r.items() if k != 'file') > 0
                                    for r in stats)
    assert all(int(k) < 12 for r in stats for k in r if k != 'file')  # reduce_zero_label applied
    again = UDADataset(source, target, rare_class_sampling=rcs)
    assert again.rcs['classes'] == ds.rcs['classes']
    np.testing.assert_allclose(again.rcs['probs'], ds.rcs['probs'])
    item = ds[0]
    assert set(item) == {'inputs', 'data_samples', 'target_inputs', 'target_data_samples'}


def test_plain_segmentor_checkpoint_loads_into_student_and_teacher(tmp_path):
    """``load_from`` a source-only model (a plain EncoderDecoder checkpoint) in a DACS config."""
    from mmengine.runner import load_checkpoint
    model = build_dacs()
    src = build_dacs().model
    for p in src.parameters():
        torch.nn.init.normal_(p)
    path = str(tmp_path / 'src.pth')
    torch.save(dict(state_dict=src.state_dict()), path)
    with pytest.raises(RuntimeError, match=r'missing keys in source state_dict: local_iter, '
                       r'ema_step\n$'):  # nothing else is missing or unexpected
        load_checkpoint(model, path, strict=True)
    for net in (model.model, model.teacher):
        for (k, a), b in zip(net.state_dict().items(), src.state_dict().values()):
            assert torch.equal(a, b), k
    assert int(model.local_iter) == 0  # the first step copies the student into the teacher again
