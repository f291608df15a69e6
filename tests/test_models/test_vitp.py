"""ViT-P: point-classifier parity with the official code (tests/data/parity/vitp), converter, the
fusion formula and the two-stage segmentors."""
import copy
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from conftest import REPO, run_tool
from mmmask.models.classifiers import ViTPEncoder, ViTPPointClassifier
from mmmask.models.converters import convert_vitp, vitp_arch_of
from mmmask.models.converters.common import ConversionError, check_complete
from mmmask.models.segmentors import mask_argmax_points, vitp_fuse
from mmmask.registry import MODELS

DATA = osp.join(osp.dirname(osp.dirname(__file__)), 'data', 'parity', 'vitp')
FIXTURES = ['classifier_small_img.pt', 'classifier_518_p4.pt', 'classifier_518_p1.pt']
TOY_FUSION = osp.join(REPO, 'configs', 'vitp', 'vitp_pem-r18-toy_toy-seg-128x128.py')


def fixture(name):
    return torch.load(osp.join(DATA, name), weights_only=True)


def classifier_for(fx, state_dict=None):
    sd = convert_vitp(fx['state_dict']) if state_dict is None else state_dict
    arch, patch, num_classes = vitp_arch_of(sd)
    arch['num_heads'] = fx['meta']['kwargs']['num_heads']
    model = ViTPPointClassifier(
        encoder=dict(type='mmmask.ViTPEncoder', arch=arch, patch_size=patch),
        num_classes=num_classes, num_points=fx['inputs']['points'].shape[1])
    model.load_state_dict(sd, strict=True)
    return model.eval()


@pytest.mark.parametrize('name', FIXTURES)
def test_classifier_parity(name):
    fx = fixture(name)
    model = classifier_for(fx)
    img, points = fx['inputs']['image'], fx['inputs']['points']
    ref = fx['outputs']
    with torch.no_grad():
        feats = model.encoder.forward_features(img, points)
        logits = model.head(feats['x_norm_point_tokens']).reshape(-1, model.num_classes)
        pos = model.encoder.interpolate_pos_encoding(points.shape[1], img.shape[-2:],
                                                     torch.float32)
    torch.testing.assert_close(pos, ref['pos_embed_used'], atol=1e-6, rtol=0)
    torch.testing.assert_close(feats['x_prenorm'], ref['x_prenorm'], atol=5e-5, rtol=1e-4)
    torch.testing.assert_close(feats['x_norm_point_tokens'], ref['x_norm_point_tokens'],
                               atol=5e-5, rtol=1e-4)
    torch.testing.assert_close(logits, ref['logits'], atol=1e-5, rtol=1e-4)


def test_pos_embed_resampled_unless_single_point():
    """The official early return only for P == 1 on the stored square grid (fixture notes)."""
    p4, p1 = fixture('classifier_518_p4.pt'), fixture('classifier_518_p1.pt')
    stored = p4['state_dict']['pos_embed']
    assert (p4['outputs']['pos_embed_used'][:, 4:] - stored[:, 1:]).abs().max() > 1e-2
    torch.testing.assert_close(p1['outputs']['pos_embed_used'], p1['state_dict']['pos_embed'])


def test_points_attend_to_each_other():
    """No attention mask: a point's logits change when another point of the chunk moves."""
    fx = fixture('classifier_518_p4.pt')
    model = classifier_for(fx)
    img, points = fx['inputs']['image'], fx['inputs']['points']
    moved = points.clone()
    moved[0, 3] = -moved[0, 3]
    with torch.no_grad():
        a, b = model.point_logits(img, points), model.point_logits(img, moved)
    assert (a[0, 0] - b[0, 0]).abs().max() > 1e-6


@pytest.mark.parametrize('name,depth,dims', [('keys_vitp_base_ade20k.json', 12, 768),
                                             ('keys_vitp_large_ade20k.json', 24, 1024)])
def test_converter_covers_released_checkpoints(name, depth, dims):
    with open(osp.join(DATA, name)) as f:
        keys = json.load(f)
    shapes = {name: shape for name, shape, _ in keys['keys']}
    with torch.device('meta'):
        official = {k: torch.empty(v) for k, v in shapes.items()}
        converted = convert_vitp(official)
        arch, patch, num_classes = vitp_arch_of(converted)
        assert (arch['num_layers'], arch['embed_dims'], patch, num_classes) == \
            (depth, dims, 14, 150)
        model = ViTPPointClassifier(
            encoder=dict(type='mmmask.ViTPEncoder', arch=arch, patch_size=14), num_classes=150)
    ref = model.state_dict()
    check_complete(converted, ref, 'ViTPPointClassifier')
    assert set(converted) == set(ref)
    # everything but the unused mask_token (D values) is carried over
    assert sum(v.numel() for v in ref.values()) + dims == keys['num_parameters']


def test_converter_rejects_other_checkpoints():
    with pytest.raises(ConversionError, match='not a DINOv2/ViT-P'):
        convert_vitp({'backbone.conv1.weight': torch.zeros(1)})
    fx = fixture('classifier_518_p1.pt')
    with pytest.raises(ConversionError, match='not DINOv2/ViT-P keys'):
        convert_vitp(dict(fx['state_dict'], **{'blocks.0.extra.weight': torch.zeros(1)}))


def test_converter_cli_classifier_and_dinov2(tmp_path):
    fx = fixture('classifier_small_img.pt')
    src = tmp_path / 'official.pth'
    # FSDP-wrapped keys as the official training loop saves them
    torch.save({'model': {f'_fsdp_wrapped_module.{k}': v for k, v in fx['state_dict'].items()}},
               str(src))
    dst = tmp_path / 'ours.pth'
    out = run_tool(['model_converters/vitp2mmmask.py', str(src), str(dst), '--num-heads', '4'],
                   cwd=str(tmp_path))
    assert '11-class ViT-P classifier' in out.stdout
    state = torch.load(str(dst), weights_only=True)['state_dict']
    model = classifier_for(fx, state)
    with torch.no_grad():
        logits = model.point_logits(fx['inputs']['image'], fx['inputs']['points'])
    torch.testing.assert_close(logits.reshape(-1, 11), fx['outputs']['logits'], atol=1e-5,
                               rtol=1e-4)

    # a DINOv2 pretrain checkpoint: cls/mask tokens, no point embedding or head
    dino = {k: v for k, v in fx['state_dict'].items() if not k.startswith(('head', 'cls_emb'))}
    dino.update(cls_token=torch.zeros(1, 1, 48), mask_token=torch.zeros(1, 48))
    torch.save(dino, str(tmp_path / 'dinov2.pth'))
    out = run_tool(['model_converters/vitp2mmmask.py', str(tmp_path / 'dinov2.pth'),
                    str(tmp_path / 'dino_ours.pth'), '--num-heads', '4'], cwd=str(tmp_path))
    assert 'DINOv2 pretrain' in out.stdout
    arch = dict(embed_dims=48, num_layers=3, num_heads=4, feedforward_channels=192)
    model = ViTPPointClassifier(
        encoder=dict(type='mmmask.ViTPEncoder', arch=arch, img_size=518, patch_size=14,
                     init_cfg=dict(type='Pretrained', prefix='encoder.',
                                   checkpoint=str(tmp_path / 'dino_ours.pth'))),
        num_classes=5)
    model.init_weights()
    torch.testing.assert_close(model.encoder.pos_embed, fx['state_dict']['pos_embed'])
    torch.testing.assert_close(model.encoder.layers[2].ffn.gamma2.weight,
                               fx['state_dict']['blocks.2.ls2.gamma'])

    torch.save({'conv.weight': torch.zeros(1)}, str(tmp_path / 'resnet.pth'))
    bad = run_tool(['model_converters/vitp2mmmask.py', str(tmp_path / 'resnet.pth'),
                    str(tmp_path / 'x.pth')], cwd=str(tmp_path), check=False)
    assert bad.returncode == 2 and 'not a DINOv2/ViT-P' in bad.stderr
    assert not (tmp_path / 'x.pth').exists()


def small_encoder(**kwargs):
    return ViTPEncoder(arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                                 feedforward_channels=64), img_size=32, patch_size=4, **kwargs)


def test_encoder_errors_and_settings():
    enc = small_encoder(drop_path_rate=0.3)
    assert [layer.ffn.dropout_layer.drop_prob for layer in enc.layers] == [0.3, 0.3]
    assert enc.cls_token is None and 'cls_token' not in enc.state_dict()
    ramp = small_encoder(drop_path_rate=0.3, drop_path_uniform=False)
    assert ramp.layers[0].ffn.dropout_layer.drop_prob == 0.0
    enc.init_weights()
    assert 0.01 < enc.point_embed.weight.std().item() < 0.03  # timm pass re-inits it (0.02)
    img = torch.randn(2, 3, 32, 40)
    assert enc(img, torch.rand(2, 3, 2) * 2 - 1).shape == (2, 3, 32)
    with pytest.raises(ValueError, match='multiple of the patch size'):
        enc(torch.randn(1, 3, 30, 32), torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match=r'\(B, P, 2\)'):
        enc(img, torch.zeros(2, 3))
    with pytest.raises(ValueError, match='fixes `out_type`'):
        small_encoder(out_type='cls_token')
    with pytest.raises(ValueError, match='square'):
        ViTPEncoder(arch=dict(embed_dims=32, num_layers=1, num_heads=2, feedforward_channels=64),
                    img_size=(32, 48), patch_size=4)


def test_classifier_modes_and_autocast():
    from mmengine.structures import BaseDataElement
    torch.manual_seed(0)
    model = ViTPPointClassifier(encoder=dict(
        type='mmmask.ViTPEncoder', arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                                             feedforward_channels=64),
        img_size=32, patch_size=4), num_classes=5, num_points=4)
    model.init_weights()
    samples = [BaseDataElement(points=torch.rand(4, 2) * 2 - 1,
                               gt_point_labels=torch.tensor([0, 1, 4, 255])) for _ in range(2)]
    data = model.data_preprocessor(dict(inputs=[torch.randint(0, 255, (3, 32, 32),
                                                              dtype=torch.uint8)] * 2,
                                        data_samples=samples), training=True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_point', 'acc_point'} and losses['loss_point'] > 0
    losses['loss_point'].backward()
    assert model.encoder.point_embed.weight.grad.abs().sum() > 0
    preds = model(**data, mode='predict')
    assert preds[0].pred_point_logits.shape == (4, 5) and preds[0].pred_point_labels.shape == (4, )
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = model(**data, mode='tensor')
    assert out.shape == (2, 4, 5) and torch.isfinite(out.float()).all()
    with pytest.raises(KeyError, match='SampleSegmentPoints'):
        model(data['inputs'], [BaseDataElement()] * 2, mode='loss')


def test_fusion_formula():
    torch.manual_seed(0)
    mask_cls, point = torch.randn(2, 7, 6), torch.randn(2, 7, 5)
    fused = vitp_fuse(mask_cls, point, alpha=0.4)
    probs = fused.softmax(-1)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, 7))
    void = mask_cls.softmax(-1)[..., -1]
    torch.testing.assert_close(probs[..., -1], void, atol=1e-6, rtol=1e-5)
    geo = mask_cls[..., :-1].softmax(-1)**0.6 * point.softmax(-1)**0.4
    expected = geo / geo.sum(-1, keepdim=True) * (1 - void[..., None])
    torch.testing.assert_close(probs[..., :-1], expected, atol=1e-6, rtol=1e-5)
    # alpha 0: stage 1 unchanged; alpha 1: ViT-P's distribution with stage-1 void
    torch.testing.assert_close(vitp_fuse(mask_cls, point, 0.0).softmax(-1), mask_cls.softmax(-1),
                               atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(vitp_fuse(mask_cls, point, 1.0).softmax(-1)[..., :-1],
                               point.softmax(-1) * (1 - void[..., None]), atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match='void'):
        vitp_fuse(mask_cls, torch.randn(2, 7, 6))


def test_mask_argmax_points_row_first():
    masks = torch.full((2, 4, 8), -5.0)
    masks[0, 3, 1] = 5.0  # row 3, col 1
    masks[1, 0, 6] = 5.0
    pts = mask_argmax_points(masks)
    torch.testing.assert_close(pts, torch.tensor([[2 * 3 / 4 - 1, 2 * 1 / 8 - 1],
                                                  [2 * 0 / 4 - 1, 2 * 6 / 8 - 1]]))


def build_toy_fusion(**overrides):
    cfg = Config.fromfile(TOY_FUSION)
    init_default_scope(cfg.default_scope)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.update(dict(dict(segmentor_checkpoint=None, classifier_checkpoint=None), **overrides))
    model_cfg['segmentor']['backbone']['init_cfg'] = None
    model_cfg['classifier']['encoder']['stem']['init_cfg'] = None
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model.eval()


def toy_batch(model, size=(128, 96)):
    from mmseg.structures import SegDataSample
    img = torch.randint(0, 255, (3, ) + size, dtype=torch.uint8)
    sample = SegDataSample(metainfo=dict(img_shape=size, ori_shape=size))
    return model.data_preprocessor(dict(inputs=[img], data_samples=[sample]), training=False)


def test_segmentor_alpha0_is_stage1_and_fusion_changes_it(tmp_path):
    model = build_toy_fusion(alpha=0.0)
    data = toy_batch(model)
    with torch.no_grad():
        fused = model.predict(**copy.deepcopy(data))[0].seg_logits.data
        stage1 = model.segmentor.predict(**copy.deepcopy(data))[0].seg_logits.data
    torch.testing.assert_close(fused, stage1)
    model.alpha = 0.4
    with torch.no_grad():
        a = model.predict(**copy.deepcopy(data))[0].seg_logits.data
        b = model.predict(**copy.deepcopy(data))[0].seg_logits.data
    assert (a - stage1).abs().max() > 1e-4
    torch.testing.assert_close(a, b)  # deterministic padding
    with pytest.raises(RuntimeError, match='test-only'):
        model.loss(data['inputs'], data['data_samples'])


def test_segmentor_loads_stage_checkpoints_and_stays_frozen(tmp_path):
    src = build_toy_fusion()
    torch.save({'state_dict': src.segmentor.state_dict()}, str(tmp_path / 's1.pth'))
    torch.save({'state_dict': src.classifier.state_dict()}, str(tmp_path / 'cls.pth'))
    torch.manual_seed(1)
    model = build_toy_fusion(segmentor_checkpoint=str(tmp_path / 's1.pth'),
                             classifier_checkpoint=str(tmp_path / 'cls.pth'))
    for a, b in zip(src.state_dict().values(), model.state_dict().values()):
        torch.testing.assert_close(a, b)
    model.train()
    assert not model.segmentor.training and not model.classifier.training
    assert not any(p.requires_grad for p in model.parameters())


def test_segmentor_chunks_points_and_maps_labels():
    model = build_toy_fusion()
    data = toy_batch(model)
    inputs, metas = data['inputs'], [ds.metainfo for ds in data['data_samples']]
    masks = torch.randn(1, 16, 128, 96)
    model.classifier.num_points = 5  # 16 queries -> 4 chunks, the last padded with 4 points
    logits = model.point_logits(inputs, masks, metas)
    assert logits.shape == (1, 16, 12)
    model.label_map = list(range(11, -1, -1))
    torch.testing.assert_close(model.point_logits(inputs, masks, metas), logits.flip(-1))
    with pytest.raises(ValueError, match='alpha'):
        build_toy_fusion(alpha=1.5)


def test_panoptic_segmentor_alpha0_is_stage1():
    from mmdet.structures import DetDataSample
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'vitp', 'vitp_pem-r18-toy_toy-panoptic-64x64.py'))
    init_default_scope(cfg.default_scope)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.update(dict(detector_checkpoint=None, classifier_checkpoint=None, alpha=0.0))
    model_cfg['classifier']['encoder']['stem']['init_cfg'] = None
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.eval()
    meta = dict(img_shape=(64, 48), ori_shape=(64, 48), scale_factor=(1.0, 1.0))
    data = model.data_preprocessor(dict(
        inputs=[torch.randint(0, 255, (3, 64, 48), dtype=torch.uint8)],
        data_samples=[DetDataSample(metainfo=meta)]), training=False)
    with torch.no_grad():
        fused = model(**copy.deepcopy(data), mode='predict')[0].pred_panoptic_seg.sem_seg
        stage1 = model.detector(**copy.deepcopy(data), mode='predict')[0].pred_panoptic_seg.sem_seg
        assert torch.equal(fused, stage1)
        model.alpha = 0.4
        out = model(**copy.deepcopy(data), mode='predict')[0]
    assert out.pred_panoptic_seg.sem_seg.shape == stage1.shape
