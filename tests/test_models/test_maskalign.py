"""MaskAlign (CVPR'23): parity with OpenDriveLab/maskalign (tests/data/parity/maskalign), frozen
teacher, configs, errors."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

from mmmask.models.converters import ConversionError, convert_hf_clip_vision, convert_maskalign
from mmmask.models.masking import BaseMaskGenerator, sample_from_order
from mmmask.models.selfsup import MaskAlign
from mmmask.models.selfsup.maskalign import level_weights, normalize_targets
from mmmask.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FIXTURES = osp.join(REPO, 'tests', 'data', 'parity', 'maskalign')
TOY = osp.join(REPO, 'configs', 'maskalign', 'maskalign_vit-tiny-p8_1xb64-30e_toy-pretrain.py')
PAPER = osp.join(REPO, 'configs', 'maskalign', 'maskalign_vit-base-p16_8xb128-200e_in1k.py')
IN_MEAN = [0.485 * 255, 0.456 * 255, 0.406 * 255]
IN_STD = [0.229 * 255, 0.224 * 255, 0.225 * 255]
TOL = dict(atol=1e-5, rtol=1e-5)


class FixedOrder(BaseMaskGenerator):
    """Stands in for the multinomial draw: keeps the first ``keep`` of a stored order."""

    def __init__(self, ids_shuffle, keep):
        super().__init__()
        self.ids_shuffle, self.keep = ids_shuffle, keep

    def forward(self, batch_size, grid, device=None, **signals):
        return sample_from_order(self.ids_shuffle, self.keep)


def fixture_model(kw):
    """The fixture's tiny student (32-d x 12) and HF-CLIP teacher (24-d x 12, quick_gelu)."""
    return MaskAlign(
        backbone=dict(type='mmmask.MaskedViT', img_size=48, patch_size=8, drop_path_rate=0.1,
                      arch=dict(embed_dims=32, num_layers=12, num_heads=4,
                                feedforward_channels=128)),
        teacher=dict(type='VisionTransformer', img_size=48, patch_size=8, pre_norm=True,
                     arch=dict(embed_dims=24, num_layers=12, num_heads=2, feedforward_channels=48),
                     norm_cfg=dict(type='LN', eps=1e-5),
                     layer_cfgs=dict(act_cfg=dict(type='mmpretrain.QuickGELU'))),
        neck=dict(type='mmmask.DynamicAlignNeck', in_channels=32, out_channels=24,
                  fusion=kw['fusion_type'], head_type=kw['head_type']),
        head=dict(type='mmmask.MultiLevelAlignHead', loss_weights=kw['loss_weights'],
                  loss_type=kw['loss_type']),
        target_norm=kw['target_norm'],
        data_preprocessor=dict(type='mmpretrain.SelfSupDataPreprocessor', mean=IN_MEAN,
                               std=IN_STD))


@pytest.mark.parametrize('name', ['maskalign_tiny.pt', 'maskalign_tiny_codedefaults.pt'])
def test_parity_with_official(name):
    fx = torch.load(osp.join(FIXTURES, name), weights_only=True)
    kw, inp, out = fx['meta']['ctor_kwargs'], fx['inputs'], fx['outputs']
    model = fixture_model(kw)
    model.load_state_dict(convert_maskalign(fx['state_dict']), strict=True)
    model.eval()
    L = inp['ids_shuffle'].shape[1]
    model.mask_generator = FixedOrder(inp['ids_shuffle'], int(L * (1 - fx['meta']['mask_ratio'])))
    res = model.forward_train(inp['imgs'])
    assert len(res['teacher_hidden']) == len(out['teacher_hidden_states']) == 13
    for a, b in zip(res['teacher_hidden'], out['teacher_hidden_states']):
        torch.testing.assert_close(a, b, **TOL)
    torch.testing.assert_close(res['teacher_attention'], out['teacher_last_attention'], **TOL)
    torch.testing.assert_close(res['importance'], out['importance'], **TOL)
    assert torch.equal(res['sample'].ids_keep, out['ids_keep'])
    for key, ref in (('student_hidden', 'student_hidden_states'), ('aligned', 'student_aligned'),
                     ('targets', 'teacher_targets')):
        assert len(res[key]) == len(out[ref]) == 12
        for a, b in zip(res[key], out[ref]):
            torch.testing.assert_close(a, b, **TOL)
    loss = model.head.loss(res['aligned'], res['targets'])
    torch.testing.assert_close(loss, out['loss'], **TOL)
    torch.testing.assert_close(loss, out['loss_forward'], **TOL)
    loss.backward()
    torch.testing.assert_close(model.neck.heads[-1].weight.grad,
                               out['grad_distill_heads_last_weight'], **TOL)
    if 'grad_distill_weights' in out:
        torch.testing.assert_close(model.neck.weights.grad, out['grad_distill_weights'], **TOL)
    assert all(p.grad is None for p in model.teacher.parameters())


def test_hf_clip_converter_errors():
    fx = torch.load(osp.join(FIXTURES, 'maskalign_tiny.pt'), weights_only=True)
    clip = {k: v for k, v in fx['state_dict'].items() if k.startswith('clip_model.')}
    conv = convert_hf_clip_vision(clip)
    assert conv['cls_token'].shape == (1, 1, 24) and conv['pos_embed'].shape == (1, 37, 24)
    assert conv['layers.0.attn.qkv.weight'].shape == (72, 24)
    with pytest.raises(ConversionError):
        convert_hf_clip_vision({'encoder.weight': torch.zeros(1)})
    bad = dict(fx['state_dict'], **{'clip_model.vision_model.extra.weight': torch.zeros(1)})
    with pytest.raises(ConversionError, match='extra'):
        convert_maskalign(bad)


def test_weights_and_target_norms():
    assert level_weights('top5', 12) == [0.] * 7 + [0.2] * 5
    assert level_weights('mean', 4) == [0.25] * 4
    assert level_weights('mid3', 12)[3] == 1 and sum(level_weights('mid3', 12)) == 1
    with pytest.raises(ValueError):
        level_weights('top13', 12)
    with pytest.raises(ValueError):
        level_weights('median', 12)
    y = torch.randn(2, 5, 8) * 3 + 1
    w = normalize_targets(y, 'whiten')
    torch.testing.assert_close(w.mean(-1), torch.zeros(2, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(normalize_targets(y, 'l2').norm(dim=-1), torch.ones(2, 5))
    with pytest.raises(ValueError):
        normalize_targets(y, 'zca')


def toy_cfg(teacher_ckpt=None):
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(TOY)
    if teacher_ckpt is None:
        cfg.model.teacher.init_cfg = None
    else:
        cfg.model.teacher.init_cfg.checkpoint = teacher_ckpt
    return cfg


def toy_batch(n=4):
    from mmpretrain.structures import DataSample
    return dict(inputs=torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8),
                data_samples=[DataSample() for _ in range(n)])


def test_toy_config_train_step_keeps_teacher_frozen(tmp_path):
    cfg = toy_cfg()
    teacher_ckpt = str(tmp_path / 'teacher.pth')
    t = MODELS.build(dict(type='mmpretrain.VisionTransformer', **{
        k: v for k, v in cfg.model.teacher.items() if k not in ('type', 'init_cfg')}))
    torch.save({'state_dict': {'backbone.' + k: v for k, v in t.state_dict().items()}},
               teacher_ckpt)
    cfg = toy_cfg(teacher_ckpt)
    model = MODELS.build(cfg.model)
    model.init_weights()
    for k, v in t.state_dict().items():  # the teacher checkpoint was loaded
        torch.testing.assert_close(model.teacher.state_dict()[k], v)
    model.train()
    assert not model.teacher.training and model.backbone.training
    assert not any(p.requires_grad for p in model.teacher.parameters())
    ow = build_optim_wrapper(model, cfg.optim_wrapper)
    before = copy.deepcopy(model.teacher.state_dict())
    s_before = model.backbone.layers[0].attn.qkv.weight.detach().clone()
    out = model.train_step(toy_batch(), ow)
    assert torch.isfinite(out['loss'])
    assert all(torch.equal(v, model.teacher.state_dict()[k]) for k, v in before.items())
    assert not torch.equal(s_before, model.backbone.layers[0].attn.qkv.weight)
    # any compatible generator: plain random masking
    model.mask_generator = MODELS.build(dict(type='mmmask.RandomMasking', ratio=0.5))
    assert torch.isfinite(model.train_step(toy_batch(), ow)['loss'])


def test_missing_teacher_checkpoint_and_bad_generator():
    cfg = toy_cfg('does/not/exist.pth')
    model = MODELS.build(cfg.model)
    with pytest.raises(ValueError, match='teacher checkpoint'):
        model.init_weights()
    cfg = toy_cfg()
    cfg.model.mask_generator = dict(type='mmmask.DoubleMasking')
    model = MODELS.build(cfg.model)
    data = model.data_preprocessor(toy_batch(), True)
    with pytest.raises(ValueError, match='one mask per image'):
        model.loss(data['inputs'])
    with pytest.raises(ValueError, match='equal'):
        MODELS.build(dict(type='mmmask.DynamicAlignNeck', in_channels=8, out_channels=8,
                          num_student_levels=4, num_teacher_levels=6, fusion='linear'))
    neck = MODELS.build(dict(type='mmmask.DynamicAlignNeck', in_channels=8, out_channels=4,
                             num_student_levels=4, num_teacher_levels=6, fusion='sum'))
    assert len(neck([torch.randn(2, 3, 8)] * 4)) == 6


def test_paper_config_builds():
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(PAPER)
    assert cfg.model.mask_generator.ratio == 0.7
    assert cfg.model.head.loss_weights == 'top5'
    cfg.model.teacher.init_cfg = None
    model = MODELS.build(cfg.model)
    assert model.backbone.embed_dims == 768 and len(model.teacher.layers) == 12


def test_converter_cli(tmp_path):
    from conftest import run_tool
    fx = torch.load(osp.join(FIXTURES, 'maskalign_tiny.pt'), weights_only=True)
    src = str(tmp_path / 'official.pth')
    torch.save({'model': fx['state_dict']}, src)
    run_tool(['model_converters/maskalign2mmmask.py', src, str(tmp_path / 'all.pth')],
             cwd=str(tmp_path))
    run_tool(['model_converters/maskalign2mmmask.py', '--clip', src, str(tmp_path / 'clip.pth')],
             cwd=str(tmp_path))
    model = fixture_model(fx['meta']['ctor_kwargs'])
    model.load_state_dict(torch.load(str(tmp_path / 'all.pth'))['state_dict'], strict=True)
    clip = torch.load(str(tmp_path / 'clip.pth'))['state_dict']
    model.teacher.load_state_dict(clip, strict=True)
    bad = run_tool(['model_converters/maskalign2mmmask.py', '--clip', str(tmp_path / 'all.pth'),
                    str(tmp_path / 'x.pth')], cwd=str(tmp_path), check=False)
    assert bad.returncode == 2 and 'vision_model' in bad.stderr
