"""PEM: parity with the official code (fixtures in tests/data/parity/pem), converter, heads."""
import json
import os.path as osp

import pytest
import torch

from mmmask.models.converters.common import check_complete
from mmmask.models.converters.pem import convert_pem, convert_pem_head
from mmmask.models.heads import PEMHead, PEMSegHead
from mmmask.models.layers import DeformLayer, PEMPixelDecoder, PrototypeCrossAttention

DATA = osp.join(osp.dirname(osp.dirname(__file__)), 'data', 'parity', 'pem')
BN = dict(type='BN')
ATOL = 5e-5


def fixture(name):
    return torch.load(osp.join(DATA, name), weights_only=True)


def convert(sd, official_prefix, ours_prefix):
    out = convert_pem_head({official_prefix + k: v for k, v in sd.items()})
    assert all(k.startswith(ours_prefix) for k in out), list(out)[:5]
    return {k[len(ours_prefix):]: v for k, v in out.items()}


def small_seg_head(num_classes=7, layers=4):
    """The fixture's configuration: conv_dim 32, mask_dim 48, hidden 64, 10 queries, 4 heads."""
    return PEMSegHead(
        in_channels=[8, 16, 24, 32], num_classes=num_classes, feat_channels=64, out_channels=48,
        num_queries=10, pixel_decoder=dict(feat_channels=32, norm_cfg=BN),
        transformer_decoder=dict(num_layers=layers, num_heads=4, feedforward_channels=96,
                                 norm_cfg=BN))


def test_deform_layer_parity():
    fx = fixture('deform_layer.pt')
    layer = DeformLayer(32, 32, dict(type='SyncBN')).eval()
    state = convert(fx['state_dict'], 'pixel_decoder.dcn.0.', 'pixel_decoder.dcn.0.')
    layer.load_state_dict(state, strict=True)
    with torch.no_grad():
        x, x_up = layer(fx['inputs']['x'])
    torch.testing.assert_close(x, fx['outputs']['x'], atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(x_up, fx['outputs']['x_up'], atol=ATOL, rtol=1e-4)


def test_pixel_decoder_parity():
    fx = fixture('pixel_decoder.pt')
    decoder = PEMPixelDecoder([8, 16, 24, 32], 32, 48, norm_cfg=BN).eval()
    decoder.load_state_dict(convert(fx['state_dict'], 'pixel_decoder.', 'pixel_decoder.'),
                            strict=True)
    feats = [fx['inputs'][k] for k in ('res2', 'res3', 'res4', 'res5')]
    with torch.no_grad():
        mask_features, multi_scale = decoder(feats)
    torch.testing.assert_close(mask_features, fx['outputs']['mask_features'], atol=ATOL, rtol=1e-4)
    assert len(multi_scale) == 3
    for ours, ref in zip(multi_scale, fx['outputs']['multi_scale_features']):
        torch.testing.assert_close(ours, ref, atol=ATOL, rtol=1e-4)
    assert (mask_features >= 0).all()  # the official final ReLU


def test_prototype_cross_attention_parity():
    fx = fixture('pem_ca.pt')
    attn = PrototypeCrossAttention(64, 4, BN).eval()
    prefix = 'transformer_decoder.layers.0.cross_attn.'
    attn.load_state_dict(convert(fx['state_dict'],
                                 'predictor.transformer_cross_attention_layers.0.', prefix),
                         strict=True)
    i = fx['inputs']
    tgt, query_pos = i['tgt'].transpose(0, 1), i['query_pos'].transpose(0, 1)  # → (B, Q, C)
    with torch.no_grad():
        out = attn(tgt, i['memory'], i['memory_mask'], i['pos'], query_pos)
        out_nomask = attn(tgt, i['memory'], None, i['pos'], query_pos)
    torch.testing.assert_close(out.transpose(0, 1), fx['outputs']['out'], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out_nomask.transpose(0, 1), fx['outputs']['out_nomask'],
                               atol=1e-5, rtol=1e-4)
    # item 1 has every query fully hidden: masking is dropped for it
    torch.testing.assert_close(out[1], out_nomask[1], atol=0, rtol=0)


def test_prototype_selection_rules():
    """Fully hidden query → pixel 0; the prototype of a query that sees one pixel is that pixel."""
    attn = PrototypeCrossAttention(8, 2, BN)
    memory = torch.nn.functional.normalize(torch.randn(1, 6, 8), dim=-1)
    query = torch.nn.functional.normalize(torch.randn(1, 3, 8), dim=-1)
    mask = torch.full((1, 3, 2, 3), -1.0)
    mask[0, 1, 1, 2] = 2.0  # query 1 sees pixel 5 only; query 0/2 see nothing
    mask[0, 2] = 1.0  # query 2 sees everything
    protos = attn.select_prototypes(memory, query, mask)
    torch.testing.assert_close(protos[0, 0], memory[0, 0])
    torch.testing.assert_close(protos[0, 1], memory[0, 5])
    sim = memory[0].view(6, 2, 4).transpose(0, 1) @ query[0, 2].view(2, 4, 1)
    best = sim.squeeze(-1).argmax(-1)  # per head
    torch.testing.assert_close(protos[0, 2], torch.cat([memory[0, best[0], :4],
                                                        memory[0, best[1], 4:]]))


def _check_decoder_outputs(cls_preds, mask_preds, ref, atol=1e-4):
    assert len(cls_preds) == len(ref['aux_outputs']) + 1
    refs = ref['aux_outputs'] + [dict(pred_logits=ref['pred_logits'],
                                      pred_masks=ref['pred_masks'])]
    for c, m, r in zip(cls_preds, mask_preds, refs):
        torch.testing.assert_close(c, r['pred_logits'], atol=ATOL, rtol=1e-4)
        torch.testing.assert_close(m, r['pred_masks'], atol=atol, rtol=1e-4)


def test_transformer_decoder_parity():
    fx = fixture('transformer_decoder.pt')
    head = small_seg_head().eval()
    state = convert_pem_head({'predictor.' + k: v for k, v in fx['state_dict'].items()})
    missing, unexpected = head.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith('pixel_decoder.') for k in missing)
    i = fx['inputs']
    with torch.no_grad():
        cls_preds, mask_preds = head.forward_decoder(i['mask_features'], i['x'])
    _check_decoder_outputs(cls_preds, mask_preds, fx['outputs'])


def test_head_parity_through_converter():
    """The full head from a checkpoint laid out as detectron2 saves it (``sem_seg_head.*``)."""
    fx = fixture('head.pt')
    official = {'sem_seg_head.' + k: v for k, v in fx['state_dict'].items()}
    head = small_seg_head().eval()
    state = {k[len('decode_head.'):]: v for k, v in convert_pem(official).items()}
    head.load_state_dict(state, strict=True)
    feats = [fx['inputs'][k] for k in ('res2', 'res3', 'res4', 'res5')]
    with torch.no_grad():
        cls_preds, mask_preds = head(feats)
    _check_decoder_outputs(cls_preds, mask_preds, fx['outputs'])


@pytest.mark.parametrize('name,classes,in_channels', [
    ('keys_head_stdc1_ade20k.json', 150, [64, 256, 512, 1024]),
    ('keys_head_r50_ade20k.json', 150, [256, 512, 1024, 2048]),
    ('keys_head_r50_cityscapes.json', 19, [256, 512, 1024, 2048]),
])
def test_converter_covers_full_size_heads(name, classes, in_channels):
    with open(osp.join(DATA, name)) as f:
        info = json.load(f)
    keys = info['keys']
    dtypes = dict(float32=torch.float32, int64=torch.int64)
    official = {k: torch.zeros(shape, dtype=dtypes[dt.replace('torch.', '')])
                for k, shape, dt in keys}
    prefix = 'sem_seg_head.' if keys[0][0].startswith('sem_seg_head.') else ''
    converted = convert_pem_head({k[len(prefix):]: v for k, v in official.items()})
    head = PEMSegHead(in_channels=in_channels, num_classes=classes,
                      pixel_decoder=dict(feat_channels=128, norm_cfg=BN),
                      transformer_decoder=dict(num_layers=6, norm_cfg=BN))
    check_complete(converted, head.state_dict(), name)
    assert sum(p.numel() for p in head.parameters()) == info['num_parameters']


def test_detection_head_shares_the_layers():
    """The mmdet head has the same modules (and the same converted keys) as the mmseg one."""
    det = PEMHead(in_channels=[8, 16, 24, 32], feat_channels=64, out_channels=48,
                  num_things_classes=4, num_stuff_classes=3, num_queries=10,
                  pixel_decoder=dict(feat_channels=32, norm_cfg=BN),
                  transformer_decoder=dict(num_layers=4, num_heads=4, feedforward_channels=96,
                                           norm_cfg=BN))
    seg = small_seg_head()
    assert {k: v.shape for k, v in det.state_dict().items()} == {
        k: v.shape for k, v in seg.state_dict().items()}


def _d2_resnet50_keys():
    """detectron2's ResNet-50 parameter names (FrozenBN: no num_batches_tracked)."""
    norm = ('weight', 'bias', 'running_mean', 'running_var')
    keys = ['stem.conv1.weight'] + [f'stem.conv1.norm.{n}' for n in norm]
    for stage, blocks in zip(range(2, 6), (3, 4, 6, 3)):
        for b in range(blocks):
            for conv in ('conv1', 'conv2', 'conv3') + (('shortcut', ) if b == 0 else ()):
                keys.append(f'res{stage}.{b}.{conv}.weight')
                keys += [f'res{stage}.{b}.{conv}.norm.{n}' for n in norm]
    return keys


def test_d2_resnet_keys_cover_mmseg_resnet50():
    from mmseg.models.backbones import ResNet

    from mmmask.models.converters.pem import convert_d2_resnet
    ref = ResNet(depth=50).state_dict()
    converted = convert_d2_resnet({k: torch.zeros(1) for k in _d2_resnet50_keys()})
    assert set(converted) == set(ref)


def _official_checkpoint(backbone_json):
    with open(osp.join(DATA, backbone_json)) as f:
        backbone = json.load(f)['keys']
    with open(osp.join(DATA, 'keys_head_stdc1_ade20k.json')) as f:
        head = json.load(f)['keys']
    sd = {'backbone.' + k: torch.zeros(shape) for k, shape, _ in backbone}
    sd.update({'sem_seg_head.' + k: torch.zeros(shape) for k, shape, _ in head})
    return {'model': sd}


@pytest.mark.parametrize('arch', ['stdc1', 'stdc2'])
def test_converter_cli_full_stdc_checkpoint(tmp_path, monkeypatch, arch):
    """A full official STDC checkpoint converts and fits the ADE20K config's model exactly."""
    import sys

    from conftest import REPO
    sys.path.insert(0, osp.join(REPO, 'tools', 'model_converters'))
    import pem2mmmask
    src, dst = tmp_path / 'model_final.pth', tmp_path / 'pem.pth'
    torch.save(_official_checkpoint(f'keys_backbone_{arch}.json'), src)
    cfg = osp.join(REPO, 'configs', 'pem', f'pem_{arch}_8xb4-90k_ade20k-512x512.py')
    monkeypatch.setattr(sys, 'argv', ['pem2mmmask', str(src), str(dst), '--config', cfg])
    assert pem2mmmask.main() == 0
    out = torch.load(dst, weights_only=True)['state_dict']
    assert any(k.startswith('backbone.stages.') for k in out)
    assert sum(k.startswith('decode_head.') for k in out) == 305
    # the same checkpoint against a config with another head width fails loudly, writes nothing
    bad = osp.join(REPO, 'configs', 'pem', 'pem_r18-toy_1xb8-2k_toy-seg-128x128.py')
    monkeypatch.setattr(sys, 'argv', ['pem2mmmask', str(src), str(tmp_path / 'x.pth'),
                                      '--config', bad])
    assert pem2mmmask.main() == 2
    assert not (tmp_path / 'x.pth').exists()


def test_converter_rejects_other_checkpoints():
    from mmmask.models.converters import ConversionError
    with pytest.raises(ConversionError, match='not an official PEM checkpoint'):
        convert_pem({'backbone.conv1.weight': torch.zeros(1), 'decode_head.x': torch.zeros(1)})
    with pytest.raises(ConversionError, match='PEM head'):
        convert_pem({'sem_seg_head.predictor.transformer_decoder.x': torch.zeros(1)})


def _seg_samples(n, size=(64, 64), classes=7):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = []
    for i in range(n):
        gen = torch.Generator().manual_seed(i)
        seg = torch.randint(0, classes, (1, 8, 8), generator=gen)
        seg = seg.repeat_interleave(size[0] // 8, 1).repeat_interleave(size[1] // 8, 2)
        s = SegDataSample(metainfo=dict(img_shape=size, pad_shape=size))
        s.gt_sem_seg = PixelData(data=seg)
        samples.append(s)
    return samples


def test_seg_head_loss_reaches_every_parameter():
    torch.manual_seed(0)
    head = PEMSegHead(
        in_channels=[8, 16, 24, 32], num_classes=7, feat_channels=32, out_channels=16,
        num_queries=6, pixel_decoder=dict(feat_channels=16, norm_cfg=BN),
        transformer_decoder=dict(num_layers=3, num_heads=4, feedforward_channels=32, norm_cfg=BN),
        train_cfg=dict(num_points=64, assigner=dict(
            type='mmdet.HungarianAssigner', match_costs=[
                dict(type='mmdet.ClassificationCost', weight=2.0),
                dict(type='mmdet.CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                dict(type='mmdet.DiceCost', weight=5.0, pred_act=True, eps=1.0)]),
            sampler=dict(type='mmdet.MaskPseudoSampler')))
    head.init_weights()
    feats = [torch.rand(2, c, 64 // s, 64 // s) for c, s in zip([8, 16, 24, 32], [4, 8, 16, 32])]
    losses = head.loss(feats, _seg_samples(2), train_cfg=None)
    assert {'loss_cls', 'loss_mask', 'loss_dice', 'd0.loss_cls', 'd2.loss_dice'} <= set(losses)
    sum(losses.values()).backward()
    missing = [n for n, p in head.named_parameters() if p.grad is None]
    assert not missing
    seg_logits = head.predict(feats, [dict(img_shape=(64, 64), pad_shape=(64, 64))], None)
    assert seg_logits.shape == (2, 7, 64, 64)


def test_official_init():
    head = small_seg_head()
    head.init_weights()
    dcn = head.pixel_decoder.dcn[0]
    assert dcn.dcn_offset.weight.abs().sum() == 0 and dcn.dcn_offset.bias.abs().sum() == 0
    kernel = dcn.up_sample.weight[:, 0]  # bilinear kernel into output channel 0
    torch.testing.assert_close(kernel[0], kernel[-1])
    torch.testing.assert_close(kernel[0, 1:3, 1:3], torch.full((2, 2), 0.5625))
    for layer in head.transformer_decoder.layers:
        assert torch.equal(layer.cross_attn.alpha, torch.ones_like(layer.cross_attn.alpha))


def test_clear_errors():
    with pytest.raises(ValueError, match='4 backbone levels'):
        PEMPixelDecoder([8, 16, 32])
    decoder = PEMPixelDecoder([8, 16, 24, 32], 16, 16, norm_cfg=BN).train()
    feats = [torch.rand(1, c, 64 // s, 64 // s) for c, s in zip([8, 16, 24, 32], [4, 8, 16, 32])]
    with pytest.raises(ValueError, match='batch size'):
        decoder(feats)
    with pytest.raises(ValueError, match='class_weight'):
        PEMSegHead(in_channels=[8, 16, 24, 32], num_classes=7, feat_channels=32,
                   out_channels=16, pixel_decoder=dict(feat_channels=16, norm_cfg=BN),
                   transformer_decoder=dict(num_layers=1, num_heads=4, norm_cfg=BN),
                   loss_cls=dict(type='mmdet.CrossEntropyLoss', class_weight=[1.0] * 4))


def test_odd_input_sizes_are_resized_not_rejected():
    decoder = PEMPixelDecoder([8, 16, 24, 32], 16, 16, norm_cfg=BN).eval()
    shapes = [(25, 33), (13, 17), (7, 9), (4, 5)]
    feats = [torch.rand(1, c, *hw) for c, hw in zip([8, 16, 24, 32], shapes)]
    mask_features, multi_scale = decoder(feats)
    assert mask_features.shape[-2:] == (25, 33)
    assert [m.shape[-2:] for m in multi_scale] == [(4, 5), (7, 9), (13, 17)]


def test_deform_layer_under_cpu_autocast():
    """AMP configs (AmpOptimWrapper → bf16 autocast on CPU): the DCN runs in fp32 as officially."""
    layer = DeformLayer(8, 8, BN).train()
    x = torch.rand(2, 8, 6, 6)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out, up = layer(x)
    assert up.shape == (2, 8, 12, 12)
    (out.float().sum() + up.float().sum()).backward()
    assert layer.dcn.weight.grad is not None
