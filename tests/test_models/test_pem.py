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
