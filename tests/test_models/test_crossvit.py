"""CrossViT: parity with the official model on the fixtures of tests/data/parity/crossvit/README.md
(through our converter), the published variants' keys and sizes, the classifier head, the
converter CLI, bad inputs, and the Brain-Score FGSM adversarial classifier."""
import importlib.util
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.registry import DefaultScope

from mmmask.models.backbones.crossvit import CrossViT, crossvit_num_patches
from mmmask.models.classifiers.adversarial import AdversarialImageClassifier
from mmmask.models.converters import ConversionError
from mmmask.models.converters.crossvit import convert_crossvit
from mmmask.models.heads.multi_branch_head import MultiBranchLinearClsHead
from mmpretrain.registry import MODELS as PRETRAIN_MODELS
from mmmask.utils import register_all_modules

register_all_modules()

FIX = osp.join(osp.dirname(__file__), '..', 'data', 'parity', 'crossvit')
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ATOL = dict(atol=1e-5, rtol=1e-5)
FIXTURES = ['crossvit_tiny.pt', 'crossvit_tiny_dagger.pt', 'crossvit_tiny_fusion_depth1.pt']
#: official factory -> (our arch, 1000-class head)
KEY_FILES = {'keys_crossvit_tiny_224.json': 'tiny', 'keys_crossvit_9_224.json': '9',
             'keys_crossvit_9_dagger_224.json': '9-dagger', 'keys_crossvit_small_224.json': 'small'}


def load(name):
    # the fixtures' meta holds a torch TorchVersion, which weights_only loading rejects
    return torch.load(osp.join(FIX, name), weights_only=False)


def build_from_official(kwargs: dict):
    """Our backbone + head with the constructor kwargs of an official ``VisionTransformer``."""
    backbone = CrossViT(
        arch=dict(embed_dims=kwargs['embed_dim'], depths=kwargs['depth'],
                  num_heads=kwargs['num_heads'], mlp_ratios=kwargs['mlp_ratio'],
                  conv_patch_embed=kwargs.get('multi_conv', False)),
        img_size=kwargs['img_size'], patch_size=kwargs['patch_size'],
        qkv_bias=kwargs.get('qkv_bias', False))
    head = MultiBranchLinearClsHead(kwargs.get('num_classes', 1000), kwargs['embed_dim'])
    return torch.nn.ModuleDict(dict(backbone=backbone, head=head))


@pytest.fixture(scope='module', params=FIXTURES)
def fix(request):
    return load(request.param)


@pytest.fixture
def model(fix):
    m = build_from_official(fix['meta']['ctor_kwargs'])
    missing, unexpected = m.load_state_dict(convert_crossvit(fix['state_dict']), strict=True)
    assert not missing and not unexpected
    return m.eval()


def test_patch_embedding_and_resize(fix, model):
    """Per-branch bicubic resize (only when the height differs) and patch tokens."""
    x = fix['inputs']['img']
    for i, embed in enumerate(model.backbone.patch_embed):
        ref = fix['outputs']['patch_embed'][f'branch{i}']
        branch = model.backbone.branch_input(x, i)
        torch.testing.assert_close(branch, ref['input'], **ATOL)
        with torch.no_grad():
            torch.testing.assert_close(embed(branch), ref['tokens'], **ATOL)


def test_multiscale_blocks(fix, model):
    with torch.no_grad():
        xs = model.backbone.tokens(fix['inputs']['img'])
        for k, block in enumerate(model.backbone.blocks):
            xs = block(xs)
            for ours, ref in zip(xs, fix['outputs']['multiscale_block_outputs'][f'block{k}']):
                torch.testing.assert_close(ours, ref, **ATOL)


def test_features_and_logits(fix, model):
    with torch.no_grad():
        feats = model.backbone(fix['inputs']['img'])
        logits = model.head(feats)
    assert isinstance(feats, tuple) and len(feats) == 2
    for ours, ref in zip(feats, fix['outputs']['forward_features']):
        torch.testing.assert_close(ours, ref, **ATOL)
    torch.testing.assert_close(logits, fix['outputs']['logits'], **ATOL)


def test_fusion_layout_follows_depth():
    """d_c = 0 and d_c = 1 are the same computation (one cross-attention block, no MLP); the
    official keys differ (bare block vs Sequential) and both convert to fusion.i.0."""
    bare = load('crossvit_tiny.pt')['state_dict']
    seq = load('crossvit_tiny_fusion_depth1.pt')['state_dict']
    assert 'blocks.0.fusion.0.norm1.weight' in bare
    assert 'blocks.0.fusion.0.0.norm1.weight' in seq
    assert 'backbone.blocks.0.fusion.0.0.norm1.weight' in convert_crossvit(bare)
    assert 'backbone.blocks.0.fusion.0.0.norm1.weight' in convert_crossvit(seq)


@pytest.mark.parametrize('key_file', sorted(KEY_FILES))
def test_published_variants_match_official_keys(key_file):
    """Every official key of the registered factories converts, shapes and parameter counts
    equal the official model's (e.g. 7,014,800 for crossvit_tiny_224)."""
    info = json.load(open(osp.join(FIX, key_file)))
    fake = {k: torch.empty(v['shape']) for k, v in info['keys'].items()}
    converted = convert_crossvit(fake)
    model = torch.nn.ModuleDict(dict(
        backbone=CrossViT(arch=KEY_FILES[key_file]),
        head=MultiBranchLinearClsHead(1000, CrossViT.arch_zoo[KEY_FILES[key_file]]['embed_dims'])))
    ours = model.state_dict()
    assert set(converted) == set(ours)
    assert all(tuple(converted[k].shape) == tuple(ours[k].shape) for k in ours)
    assert sum(p.numel() for p in model.parameters()) == info['num_parameters_unique']


def test_timm_naming_and_module_prefix():
    sd = load('crossvit_tiny.pt')['state_dict']
    timm_sd = {'module.' + k.replace('pos_embed.', 'pos_embed_').replace('cls_token.', 'cls_token_'):
               v for k, v in sd.items()}
    a, b = convert_crossvit(sd), convert_crossvit(timm_sd)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    backbone_only = convert_crossvit(sd, with_head=False)
    assert backbone_only and all(k.startswith('backbone.') for k in backbone_only)
    assert len(backbone_only) == len(a) - 4


def test_converter_rejects_foreign_keys():
    sd = dict(load('crossvit_tiny.pt')['state_dict'])
    sd['patch_embed.0.attention1.weight'] = torch.zeros(1)  # a T2T hybrid key
    with pytest.raises(ConversionError, match='attention1'):
        convert_crossvit(sd)


def test_converter_cli(tmp_path, monkeypatch, capsys):
    src, dst = tmp_path / 'official.pth', tmp_path / 'out' / 'crossvit.pth'
    fix = load('crossvit_tiny.pt')
    torch.save({'model': fix['state_dict']}, str(src))
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'model_converters',
                                                    'crossvit2mmmask.py'), str(src), str(dst)],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    out = torch.load(str(dst), weights_only=True)['state_dict']
    m = build_from_official(fix['meta']['ctor_kwargs']).eval()
    m.load_state_dict(out, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(m.head(m.backbone(fix['inputs']['img'])),
                                   fix['outputs']['logits'], **ATOL)
    # a checkpoint of another model fails loudly (in-process: one interpreter start is enough)
    torch.save({'model': {'encoder.weight': torch.zeros(1)}}, str(src))
    spec = importlib.util.spec_from_file_location(
        'crossvit2mmmask', osp.join(REPO, 'tools', 'model_converters', 'crossvit2mmmask.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.setattr(sys, 'argv', ['crossvit2mmmask.py', str(src), str(tmp_path / 'x.pth')])
    assert tool.main() == 2
    assert 'encoder.weight' in capsys.readouterr().err


def test_official_patch_count_quirk():
    assert crossvit_num_patches(240, 12) == 400 and crossvit_num_patches(224, 16) == 196
    assert crossvit_num_patches(40, 12) == 10  # != 3*3 conv tokens: the official model breaks
    with pytest.raises(ValueError, match='not a multiple of patch_size'):
        CrossViT(arch='tiny', img_size=(40, 32), patch_size=(12, 16))


def test_bad_arguments_name_the_fix():
    with pytest.raises(ValueError, match="valid: .*'9-dagger'"):
        CrossViT(arch='crossvit-42')
    with pytest.raises(ValueError, match='one image size and one patch size per branch'):
        CrossViT(arch='tiny', img_size=(224, ), patch_size=(16, ))
    with pytest.raises(ValueError, match='patch sizes 12 and 16'):
        CrossViT(arch='9-dagger', img_size=(240, 224), patch_size=(8, 16))
    with pytest.raises(ValueError, match='misses'):
        CrossViT(arch=dict(embed_dims=[8, 16]))
    with pytest.raises(ValueError, match='out of range'):
        CrossViT(arch='tiny', out_indices=(2, ))
    with pytest.raises(ValueError, match='MultiBranchLinearClsHead needs one in_channels'):
        MultiBranchLinearClsHead(10, 96)


def test_wrong_input_size_is_explained():
    m = CrossViT(arch=dict(embed_dims=[16, 32], depths=[[1, 1, 0]], num_heads=[2, 2],
                           mlp_ratios=[2, 2]), img_size=(48, 32), patch_size=(12, 16)).eval()
    with torch.no_grad():
        assert [o.shape for o in m(torch.randn(1, 3, 40, 40))] == [(1, 16), (1, 32)]
        with pytest.raises(ValueError, match='needs 32x32 images; got \\(32, 40\\)'):
            m(torch.randn(1, 3, 32, 40))  # height = branch size: not resized (official)
        with pytest.raises(ValueError, match='B, C, H, W'):
            m(torch.randn(3, 32, 32))


def test_arch_aliases_and_featmap_output():
    assert CrossViT._parse_arch('18†') == CrossViT.arch_zoo['18-dagger']
    assert CrossViT._parse_arch('Ti')['embed_dims'] == [96, 192]
    m = CrossViT(arch=dict(embed_dims=[16, 32], depths=[[1, 1, 0]], num_heads=[2, 2],
                           mlp_ratios=[2, 2]), img_size=(48, 32), patch_size=(12, 16),
                 out_type='featmap').eval()
    with torch.no_grad():
        outs = m(torch.randn(2, 3, 32, 32))
    assert [o.shape for o in outs] == [(2, 16, 4, 4), (2, 32, 2, 2)]


def tiny_classifier(cls_type='ImageClassifier', **kwargs):
    cfg = dict(
        type=cls_type,
        data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=10,
                               mean=[127.5] * 3, std=[64.0] * 3),
        backbone=dict(type='mmmask.CrossViT',
                      arch=dict(embed_dims=[16, 32], depths=[[1, 1, 0]], num_heads=[2, 2],
                                mlp_ratios=[2, 2]), img_size=(32, 32), patch_size=(8, 16)),
        head=dict(type='mmmask.MultiBranchLinearClsHead', num_classes=10, in_channels=[16, 32],
                  loss=dict(type='CrossEntropyLoss')),
        **kwargs)
    with DefaultScope.overwrite_default_scope('mmpretrain'):  # the configs' default scope
        return PRETRAIN_MODELS.build(cfg)


def batch(n=8, seed=0):
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(seed)
    imgs = torch.randint(0, 256, (n, 3, 32, 32), generator=g).float()
    labels = torch.randint(0, 10, (n, ), generator=g)
    return imgs, [DataSample().set_gt_label(int(t)) for t in labels]


def test_in_mmpretrain_image_classifier():
    model = tiny_classifier()
    model.init_weights()
    imgs, samples = batch()
    data = model.data_preprocessor(dict(inputs=list(imgs), data_samples=samples), True)
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    assert torch.isfinite(losses['loss'])
    preds = model(data['inputs'], data['data_samples'], mode='predict')
    assert preds[0].pred_score.shape == (10, )


# ----------------------------------------------------------------------------------------------
# FGSM adversarial training (Brain-Score recipe)

def adv_model(**kwargs):
    torch.manual_seed(0)
    model = tiny_classifier('mmmask.AdversarialImageClassifier', **kwargs)
    model.init_weights()
    return model


def normalised(model, imgs):
    return (imgs - model.data_preprocessor.mean) / model.data_preprocessor.std


def clean_loss(model, inputs, samples):
    return AdversarialImageClassifier._attack_loss(model, inputs, samples).item()


@pytest.mark.parametrize('random_start', [False, True])
def test_fgsm_step_increases_the_loss(random_start):
    """On a fixed (eval-mode) model the FGSM example has a higher loss than the clean batch."""
    model = adv_model(eps=8 / 255, alpha=10 / 255, random_start=random_start).eval()
    imgs, samples = batch(16)
    inputs = normalised(model, imgs)
    torch.manual_seed(1)
    with torch.no_grad():
        before = clean_loss(model, inputs, samples)
    adv = model.adversarial_examples(inputs, samples)
    with torch.no_grad():
        after = clean_loss(model, adv, samples)
        noise = normalised(model, (imgs + torch.empty_like(imgs).uniform_(-8, 8)).clamp(0, 255))
        random = clean_loss(model, noise, samples)
    assert after > before + 0.05 and after > random + 0.05, (before, random, after)


def test_perturbation_stays_within_eps_and_range():
    model = adv_model(eps=2 / 255, alpha=2.5 / 255, random_start=True).train()
    imgs, samples = batch(8, seed=3)
    imgs[0] = 0.
    imgs[1] = 255.
    adv = model.adversarial_examples(normalised(model, imgs), samples)
    pixels = adv * model.data_preprocessor.std + model.data_preprocessor.mean
    diff = (pixels - imgs).abs()
    assert diff.max() <= 2 + 1e-3
    assert diff.mean() > 1.0  # the step (2.5 > eps) saturates most pixels at +-eps
    assert pixels.min() >= -1e-3 and pixels.max() <= 255 + 1e-3


def test_random_start_is_random_and_ratio_mixes_clean_images():
    model = adv_model(adv_ratio=0.5).train()
    imgs, samples = batch(8)
    inputs = normalised(model, imgs)
    a = model.adversarial_examples(inputs, samples)
    b = model.adversarial_examples(inputs, samples)
    assert not torch.equal(a, b)
    mixed = model.training_inputs(inputs, samples)
    changed = (mixed != inputs).flatten(1).any(1)
    assert changed.sum().item() == 4  # adv_ratio 0.5 of 8 images attacked, 4 kept clean


def test_adversarial_train_step_runs_and_eval_is_clean():
    from mmengine.optim import OptimWrapper
    model = adv_model().train()
    imgs, samples = batch(8)
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    log = model.train_step(dict(inputs=list(imgs), data_samples=samples), optim)
    assert torch.isfinite(log['loss'])
    model.eval()
    inputs = normalised(model, imgs)
    with torch.no_grad():
        torch.manual_seed(0)
        a = model.loss(inputs, samples)['loss']
        torch.manual_seed(5)
        b = model.loss(inputs, samples)['loss']
    assert torch.equal(a, b)  # eval mode: no attack, deterministic


def test_adversarial_arguments_are_checked():
    with pytest.raises(ValueError, match='adv_ratio'):
        adv_model(adv_ratio=1.5)
    with pytest.raises(ValueError, match='2/255'):
        adv_model(eps=-1)
