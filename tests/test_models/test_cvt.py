"""CvT: parity with the official ``ConvolutionalVisionTransformer`` on the fixtures of
tests/data/parity/cvt/README.md (through our converter), the converter and its CLI on the full-size
key lists, the backbone's options and errors, the mmpretrain/mmseg paths and the FLOPs formula."""
import json
import os.path as osp

import pytest
import torch
from torch import nn

from mmmask.models.backbones.cvt import (CvT, CvTAttention, FP32LayerNorm, QuickGELU,
                                         cvt_attention_flops)
from mmmask.models.converters import ConversionError
from mmmask.models.converters.cvt import convert_cvt, cvt_arch_of
from mmpretrain.registry import MODELS as CLS_MODELS
from mmmask.utils import register_all_modules

from conftest import REPO, run_tool

# mmpretrain classifiers built here resolve their default data preprocessor in the current scope
pytestmark = pytest.mark.usefixtures('mmpretrain_scope')

register_all_modules()

FIX = osp.join(osp.dirname(__file__), '..', 'data', 'parity', 'cvt')
FIXTURES = ['cvt13_tiny.pt', 'cvt13_tiny_b1_nonsquare.pt', 'cvt13_tiny_train_mode.pt',
            'cvt_tiny_avg_gap.pt']
ATOL = dict(atol=1e-5, rtol=1e-5)
#: official MODEL.SPEC keys -> our arch keys
SPEC_KEYS = dict(
    DIM_EMBED='embed_dims', DEPTH='depths', NUM_HEADS='num_heads', PATCH_SIZE='patch_sizes',
    PATCH_STRIDE='patch_strides', PATCH_PADDING='patch_paddings', MLP_RATIO='mlp_ratios',
    QKV_BIAS='qkv_bias', CLS_TOKEN='cls_token', QKV_PROJ_METHOD='qkv_proj_method',
    KERNEL_QKV='kernel_qkv', PADDING_KV='padding_kv', STRIDE_KV='stride_kv',
    PADDING_Q='padding_q', STRIDE_Q='stride_q', DROP_RATE='drop_rates',
    ATTN_DROP_RATE='attn_drop_rates', DROP_PATH_RATE='drop_path_rates')
CONFIGS = osp.join(REPO, 'configs', 'cvt')


def load(name: str) -> dict:
    # meta holds a torch.torch_version.TorchVersion, which weights_only loading refuses
    return torch.load(osp.join(FIX, name), weights_only=False)


def arch_of_spec(spec: dict) -> dict:
    return {SPEC_KEYS[k]: v for k, v in spec.items() if k in SPEC_KEYS}


def classifier(fix: dict):
    """An mmpretrain ImageClassifier (CvT + LinearClsHead) holding the fixture's weights."""
    spec = fix['meta']['ctor_kwargs']['spec']
    model = CLS_MODELS.build(dict(
        _scope_='mmpretrain', type='ImageClassifier',
        backbone=dict(type='mmmask.CvT', arch=arch_of_spec(spec),
                      out_type='cls_token' if spec['CLS_TOKEN'][-1] else 'avg_featmap'),
        neck=None,
        head=dict(type='LinearClsHead', in_channels=spec['DIM_EMBED'][-1],
                  num_classes=fix['meta']['ctor_kwargs']['num_classes'])))
    missing, unexpected = model.load_state_dict(convert_cvt(fix['state_dict']), strict=True)
    assert not missing and not unexpected
    return model.train(fix['meta']['mode'] == 'train')


@pytest.fixture(scope='module', params=FIXTURES)
def fix(request):
    return load(request.param)


def test_logits_and_features(fix):
    """Classifier logits and the head input equal the official ``forward`` / ``forward_features``.

    The official ``forward_features`` ``torch.squeeze``-s the feature: for a batch of one it also
    drops the batch axis (``[C]``, logits ``[num_classes]``, the b1_nonsquare fixture). We keep
    ``(B, C)`` — mmpretrain's head, loss and metrics index the batch axis — so the comparison
    reshapes the official output to ours.
    """
    model = classifier(fix)
    x = fix['inputs']['img']
    with torch.no_grad():
        feats = model.extract_feat(x)
        logits = model(x, mode='tensor')
    assert feats[0].shape == (x.shape[0], fix['meta']['ctor_kwargs']['spec']['DIM_EMBED'][-1])
    assert logits.shape[0] == x.shape[0]
    if x.shape[0] == 1:  # the official squeeze quirk
        assert fix['outputs']['logits'].dim() == 1 and fix['outputs']['forward_features'].dim() == 1
    torch.testing.assert_close(feats[0].reshape(fix['outputs']['forward_features'].shape),
                               fix['outputs']['forward_features'], **ATOL)
    torch.testing.assert_close(logits.reshape(fix['outputs']['logits'].shape),
                               fix['outputs']['logits'], **ATOL)


def test_stage_maps(fix):
    """``out_type='featmap'`` gives the official stage maps (the CLS token removed) at all three
    stages, including the non-square 12x20 -> 6x10 -> 3x5 grids."""
    spec = fix['meta']['ctor_kwargs']['spec']
    backbone = CvT(arch=arch_of_spec(spec), out_type='featmap')
    state = {k[len('backbone.'):]: v for k, v in
             convert_cvt(fix['state_dict'], with_head=False, with_final_norm=False).items()}
    backbone.load_state_dict(state, strict=True)
    backbone.train(fix['meta']['mode'] == 'train')
    with torch.no_grad():
        maps = backbone(fix['inputs']['img'])
    assert len(maps) == 3
    for i, out in enumerate(maps):
        torch.testing.assert_close(out, fix['outputs']['stages'][f'stage{i}']['x'],
                                   atol=2e-5, rtol=1e-5)


def test_intermediate_cls_tokens_and_avg_features():
    """``cls_token`` on a stage without the final norm returns the raw CLS (the fixture's stage
    output); ``avg_featmap`` of the last stage is the mean of the normed map tokens."""
    fix = load('cvt13_tiny.pt')
    arch = arch_of_spec(fix['meta']['ctor_kwargs']['spec'])
    sd = {k[len('backbone.'):]: v for k, v in convert_cvt(fix['state_dict'], False).items()}
    x = fix['inputs']['img']
    torch.manual_seed(0)
    cls_model = CvT(arch=dict(arch, cls_token=[False, True, True]), out_indices=(1, 2)).eval()
    with torch.no_grad():
        outs = cls_model(x)
        raw = cls_model.stages[1](cls_model.stages[0](x)[0])[1][:, 0]
    assert [o.shape for o in outs] == [(2, 32), (2, 48)]
    torch.testing.assert_close(outs[0], raw)  # no final norm on an intermediate stage
    avg = CvT(arch=arch, out_type='avg_featmap').eval()
    avg.load_state_dict(sd, strict=True)
    with torch.no_grad():
        feat = avg(x)[0]
        stage2 = fix['outputs']['stages']['stage2']['x'].flatten(2).transpose(1, 2)
        expected = nn.functional.layer_norm(stage2, (48, ), sd['final_norm.weight'],
                                            sd['final_norm.bias'], 1e-5).mean(1)
    torch.testing.assert_close(feat, expected, **ATOL)


def test_train_mode_updates_batchnorm_statistics():
    """In train mode the q/k/v BatchNorms use batch statistics and update their running stats."""
    fix = load('cvt13_tiny_train_mode.pt')
    model = classifier(fix)
    bn = model.backbone.stages[2].blocks[0].attn.conv_proj_k.bn
    before = bn.running_mean.clone()
    with torch.no_grad():
        model.extract_feat(fix['inputs']['img'])
    assert not torch.equal(before, bn.running_mean)
    assert int(bn.num_batches_tracked) == int(fix['state_dict'][
        'stage2.blocks.0.attn.conv_proj_k.bn.num_batches_tracked']) + 1


# ---------------------------------------------------------------- converter
@pytest.mark.parametrize('name,arch', [('keys_cvt13.json', 'cvt-13'), ('keys_cvt21.json', 'cvt-21'),
                                       ('keys_cvt_w24.json', 'cvt-w24')])
def test_converter_full_size(name, arch):
    """Every official key of CvT-13/21/W24 converts onto our presets + LinearClsHead(1000)."""
    with open(osp.join(FIX, name)) as f:
        info = json.load(f)
    official = {k: torch.empty(v['shape']) for k, v in info['keys'].items()}
    converted = convert_cvt(official)
    model = CLS_MODELS.build(dict(
        _scope_='mmpretrain', type='ImageClassifier', backbone=dict(type='mmmask.CvT', arch=arch),
        head=dict(type='LinearClsHead', in_channels=CvT.arch_zoo[arch]['embed_dims'][-1],
                  num_classes=1000)))
    ref = model.state_dict()
    assert set(converted) == set(ref)
    for k, v in converted.items():
        assert tuple(v.shape) == tuple(ref[k].shape), k
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == info['num_parameters_unique']
    read = cvt_arch_of(official)
    preset = CvT.arch_zoo[arch]
    assert read['embed_dims'] == preset['embed_dims'] and read['depths'] == preset['depths']
    assert read['cls_token'] == preset['cls_token'] and read['num_classes'] == 1000


def test_converter_options_and_errors():
    sd = {'module.stage2.cls_token': torch.zeros(1, 1, 4), 'module.norm.weight': torch.ones(4),
          'module.head.weight': torch.zeros(3, 4)}
    assert list(convert_cvt(sd)) == ['backbone.stages.2.cls_token', 'backbone.final_norm.weight',
                                     'head.fc.weight']
    assert list(convert_cvt(sd, with_head=False, with_final_norm=False)) == [
        'backbone.stages.2.cls_token']
    with pytest.raises(ConversionError, match='stage0.pos_embed'):
        convert_cvt({'stage0.pos_embed': torch.zeros(1)})
    with pytest.raises(ConversionError, match='not an official CvT'):
        cvt_arch_of({'head.weight': torch.zeros(1)})


def test_converter_cli(tmp_path):
    """tools/model_converters/cvt2mmmask.py on a DDP-style full-size CvT-13 checkpoint, checked
    against the ImageNet config; the result loads into that config's model."""
    with open(osp.join(FIX, 'keys_cvt13.json')) as f:
        info = json.load(f)
    torch.manual_seed(0)
    official = {f'module.{k}': torch.randn(v['shape']) if v['dtype'] == 'float32'
                else torch.zeros(v['shape'], dtype=torch.long) for k, v in info['keys'].items()}
    src, dst = str(tmp_path / 'CvT-13-224x224-IN-1k.pth'), str(tmp_path / 'out' / 'cvt13.pth')
    torch.save(official, src)
    cfg = osp.join(CONFIGS, 'cvt-13_8xb256_in1k.py')
    proc = run_tool(['model_converters/cvt2mmmask.py', src, dst, '--config', cfg],
                    cwd=str(tmp_path))
    assert "'depths': [1, 2, 10]" in proc.stdout
    out = torch.load(dst, weights_only=False)
    assert out['meta']['converter'] == 'cvt2mmmask'
    torch.testing.assert_close(out['state_dict']['backbone.stages.2.blocks.9.attn.proj_q.weight'],
                               official['module.stage2.blocks.9.attn.proj_q.weight'])
    bad = str(tmp_path / 'bad.pth')
    torch.save({'stage0.foo': torch.zeros(1), 'stage0.patch_embed.proj.weight': torch.zeros(1)},
               bad)
    proc = run_tool(['model_converters/cvt2mmmask.py', bad, dst], cwd=str(tmp_path), check=False)
    assert proc.returncode == 2 and 'stage0.foo' in proc.stderr


# ---------------------------------------------------------------- backbone behaviour
def tiny(**kwargs) -> CvT:
    arch = dict(embed_dims=[8, 16, 24], depths=[1, 1, 2], num_heads=[1, 2, 3])
    return CvT(arch=dict(arch, **kwargs.pop('arch', {})), **kwargs)


def test_presets_match_published_sizes():
    """CvT-13 19.997M, CvT-21 31.62M, W24 277.2M parameters with a 1000-class head (the
    official keys files); aliases and case do not matter."""
    for arch, params in (('cvt-13', 19997480), ('21', 31622696), ('CvT-W24', 277196392)):
        model = CvT(arch=arch)
        c = model.embed_dims[-1]
        n = sum(p.numel() for p in model.parameters()) + c * 1000 + 1000
        assert n == params, arch
    assert CvT(arch='w24').stages[2].blocks[-1].drop_path.drop_prob == pytest.approx(0.3)


def test_drop_path_ramps_within_each_stage():
    model = tiny(arch=dict(depths=[2, 2, 3]), drop_path_rate=[0.1, 0.2, 0.4])
    rates = [getattr(b.drop_path, 'drop_prob', 0.) for s in model.stages for b in s.blocks]
    assert rates == pytest.approx([0., 0.1, 0., 0.2, 0., 0.2, 0.4])
    model = tiny(drop_path_rate=0.3)  # a float: the last stage only, as published
    assert [getattr(s.blocks[-1].drop_path, 'drop_prob', 0.) for s in model.stages] == \
        pytest.approx([0., 0., 0.3])


def test_any_input_size():
    """No positional embedding: square, non-square and odd sizes all run; the grids follow the
    conv embeddings (k7 s4 p2, then k3 s2 p1)."""
    model = tiny(out_type='featmap').eval()
    for h, w in ((64, 64), (48, 80), (37, 53), (224, 96)):
        with torch.no_grad():
            outs = model(torch.randn(1, 3, h, w))
        gh, gw = (h - 3) // 4 + 1, (w - 3) // 4 + 1
        sizes = [(gh, gw)]
        for _ in range(2):
            gh, gw = (gh - 1) // 2 + 1, (gw - 1) // 2 + 1
            sizes.append((gh, gw))
        assert [tuple(o.shape[-2:]) for o in outs] == sizes


def test_out_types_and_indices():
    x = torch.randn(2, 3, 32, 48)
    model = tiny().eval()  # default: final-norm CLS of the last stage
    assert model.out_indices == [2] and model.final_norm is not None
    assert [o.shape for o in model(x)] == [(2, 24)]
    model = tiny(out_type='avg_featmap', out_indices=(0, 2)).eval()
    assert [o.shape for o in model(x)] == [(2, 8), (2, 24)]
    model = tiny(out_type='featmap', out_indices=-1)
    assert model.final_norm is None and [o.shape for o in model(x)] == [(2, 24, 2, 3)]


def test_bad_arguments_name_the_fix():
    with pytest.raises(ValueError, match="valid: \\['cvt-13', 'cvt-21', 'cvt-w24'\\]"):
        CvT(arch='cvt-42')
    with pytest.raises(ValueError, match='misses'):
        CvT(arch=dict(embed_dims=[8, 16, 24], depths=[1, 1, 1]))
    with pytest.raises(ValueError, match='unknown keys'):
        CvT(arch=dict(embed_dims=[8], depths=[1], num_heads=[1], pos_embed=[True]))
    with pytest.raises(ValueError, match='expected 3'):
        tiny(arch=dict(stride_kv=[2, 2]))
    with pytest.raises(ValueError, match="use out_type='avg_featmap'"):
        tiny(out_type='cls_token', out_indices=(0, 2))
    with pytest.raises(ValueError, match='out of range'):
        tiny(out_indices=(3, ))
    with pytest.raises(ValueError, match='out_type'):
        tiny(out_type='raw')
    with pytest.raises(ValueError, match="'linear' method is broken"):
        tiny(arch=dict(qkv_proj_method=['linear'] * 3))
    with pytest.raises(ValueError, match='stride_q=1'):
        tiny(arch=dict(stride_q=[2, 1, 1]))
    with pytest.raises(ValueError, match='divisible'):
        tiny(arch=dict(num_heads=[3, 2, 3]))


def test_attention_scale_quirk_and_explicit_path():
    """The logit scale is embed_dims^-0.5 (not head_dims^-0.5); the fused SDPA path equals the
    explicit softmax path that also returns the map (k/v: 4x fewer tokens, + the CLS)."""
    torch.manual_seed(0)
    attn = CvTAttention(12, 3, num_extra_tokens=1).eval()
    assert attn.scale == pytest.approx(12**-0.5)
    x = torch.randn(2, 1 + 6 * 8, 12)
    with torch.no_grad():
        fused = attn(x, (6, 8))
        explicit, amap = attn(x, (6, 8), return_attn=True)
    assert amap.shape == (2, 3, 49, 1 + 3 * 4)
    torch.testing.assert_close(fused, explicit, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(amap.sum(-1), torch.ones(2, 3, 49))


def test_attention_takes_a_logit_bias():
    """A shared-interface :class:`MaskedBias` keeping one key per query: the output is that
    key's value, projected."""
    from mmmask.models.layers.attention_bias import MaskedBias
    torch.manual_seed(0)
    attn = CvTAttention(8, 2, num_extra_tokens=1).eval()
    x = torch.randn(1, 1 + 4 * 4, 8)
    keep = torch.zeros(1, 1, 17, 1 + 2 * 2, dtype=torch.bool)
    keep[..., 0] = True  # only the CLS key
    with torch.no_grad():
        out, amap = attn(x, (4, 4), return_attn=True, bias=MaskedBias(keep))
        v_cls = attn.proj_v(x[:, :1])  # the CLS bypasses the conv projection
        expected = attn.proj(v_cls).expand(1, 17, 8)
    assert torch.all(amap[..., 0] == 1)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)


def test_quickgelu_and_fp32_layernorm():
    x = torch.randn(5, 8)
    torch.testing.assert_close(QuickGELU()(x), x * torch.sigmoid(1.702 * x))
    ln = FP32LayerNorm(8, eps=1e-5)
    y = ln(x.to(torch.bfloat16))
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y, ln(x.to(torch.bfloat16).float()).to(torch.bfloat16))


def test_frozen_stages_and_norm_eval():
    model = tiny(out_type='featmap', frozen_stages=1, norm_eval=True)
    model.train()
    assert all(not p.requires_grad for p in model.stages[0].parameters())
    assert all(p.requires_grad for p in model.stages[1].parameters())
    assert not model.stages[0].training and model.stages[1].training
    assert not model.stages[1].blocks[0].attn.conv_proj_q.bn.training


def test_with_cp_matches():
    torch.manual_seed(0)
    a = tiny(out_type='featmap')
    b = tiny(out_type='featmap', with_cp=True)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    for m in (a, b):
        m.eval()
    ya, yb = a(x), b(x)
    for u, v in zip(ya, yb):
        torch.testing.assert_close(u, v)
    sum(o.sum() for o in yb).backward()
    assert x.grad is not None


def test_init_weights_official_scheme():
    torch.manual_seed(0)
    model = CvT(arch='cvt-13')
    model.init_weights()
    w = model.stages[2].blocks[0].attn.proj_q.weight
    assert abs(w.std().item() - 0.02) < 2e-3
    assert torch.all(model.stages[2].blocks[0].attn.proj_q.bias == 0)
    assert model.stages[2].cls_token.std() > 0
    model = tiny(init_mode='xavier')
    model.init_weights()
    w = model.stages[0].blocks[0].ffn.fc1.weight
    bound = (6 / sum(w.shape))**0.5
    assert w.abs().max() <= bound and w.abs().max() > 0.5 * bound


# ---------------------------------------------------------------- mmseg path, FLOPs
def test_segmentation_config_runs_with_a_tiny_arch():
    """The ADE20K UPerNet config with a tiny CvT: multi-scale maps feed UPerHead + FCN auxiliary
    head; one training loss and a prediction at the input size."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS as SEG_MODELS
    from mmseg.structures import SegDataSample
    from mmengine.structures import PixelData
    cfg = Config.fromfile(osp.join(CONFIGS, 'upernet_cvt-13_8xb2-160k_ade20k-512x512.py'))
    init_default_scope('mmseg')
    cfg.model.backbone.arch = dict(embed_dims=[8, 16, 24], depths=[1, 1, 1], num_heads=[1, 2, 3])
    cfg.model.backbone.init_cfg = None
    cfg.model.decode_head.update(in_channels=[8, 16, 24], channels=16,
                                 norm_cfg=dict(type='BN', requires_grad=True))
    cfg.model.auxiliary_head.update(in_channels=24, channels=8,
                                    norm_cfg=dict(type='BN', requires_grad=True))
    cfg.model.data_preprocessor.size = (64, 64)
    cfg.model.test_cfg = dict(mode='whole')
    model = SEG_MODELS.build(cfg.model)
    model.init_weights()
    samples = []
    for _ in range(2):
        s = SegDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64), pad_shape=(64, 64)))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 150, (1, 64, 64)))
        samples.append(s)
    data = dict(inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8) for _ in range(2)],
                data_samples=samples)
    model.train()
    data = model.data_preprocessor(data, True)
    losses = model(**data, mode='loss')
    assert {'decode.loss_ce', 'aux.loss_ce'} <= set(losses)
    model.eval()
    with torch.no_grad():
        preds = model(data['inputs'], data['data_samples'], mode='predict')
    assert preds[0].pred_sem_seg.data.shape == (1, 64, 64)


def test_attention_flops_formula_matches_a_counter():
    """:func:`cvt_attention_flops` equals torch's FlopCounterMode (FLOPs = 2 x MACs) on the conv,
    linear and attention matmuls (with a CLS token, non-square grid, dw_bn and avg)."""
    from torch.utils.flop_counter import FlopCounterMode
    for method, e, hw, skv in (('dw_bn', 1, (7, 10), 2), ('avg', 0, (6, 6), 2),
                               ('dw_bn', 0, (5, 9), 1)):
        attn = CvTAttention(12, 3, method=method, num_extra_tokens=e, stride_kv=skv).eval()
        x = torch.randn(1, e + hw[0] * hw[1], 12)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            attn(x, hw, return_attn=True)
        macs = cvt_attention_flops(12, hw, e, method, stride_kv=skv)
        # FlopCounterMode ignores the bias adds and the depthwise convs' groups are counted
        # exactly (k^2 per output channel)
        assert counter.get_total_flops() == 2 * macs, (method, e, hw)
