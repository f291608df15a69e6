"""Each compatibility patch, with a check that the unpatched upstream behaviour is really broken."""
import pickle

import numpy as np
import pytest
import torch
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

import mmmask  # noqa: F401
from mmmask.engine import CPUAmpOptimWrapper
from mmmask.utils import compat

requires_no_gpu = pytest.mark.skipif(compat.has_accelerator(), reason='CPU-only behaviour')


def _checkpoint_with_history(path):
    """A checkpoint like mmengine writes: pickled HistoryBuffer and numpy objects in `message_hub`."""
    from mmengine.logging import HistoryBuffer
    buf = HistoryBuffer()
    buf.update(1.0)
    torch.save(dict(meta=dict(seed=np.int64(3), arr=np.arange(3)), state_dict={'w': torch.ones(2)},
                    message_hub=dict(log_scalars={'train/loss': buf})), path)


def test_weights_only_default_breaks_plain_torch_load(tmp_path):
    path = str(tmp_path / 'ckpt.pth')
    _checkpoint_with_history(path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)  # torch>=2.6 default: what mmengine 0.10.7 calls


def test_checkpoint_loaders_read_full_checkpoints(tmp_path):
    from mmengine.runner import CheckpointLoader, load_checkpoint
    path = str(tmp_path / 'ckpt.pth')
    _checkpoint_with_history(path)
    ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert ckpt['meta']['seed'] == 3
    model = torch.nn.Linear(2, 1, bias=False)
    model.weight.data.zero_()
    torch.save(dict(state_dict={'weight': torch.ones(1, 2)}, meta=dict(a=np.float64(1))),
               str(tmp_path / 'm.pth'))
    load_checkpoint(model, str(tmp_path / 'm.pth'), map_location='cpu')
    assert torch.equal(model.weight.data, torch.ones(1, 2))


@requires_no_gpu
def test_amp_optim_wrapper_becomes_cpu_bf16():
    model = torch.nn.Linear(4, 4)
    wrapper = OPTIM_WRAPPERS.build(dict(type='AmpOptimWrapper', loss_scale='dynamic',
                                        optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    assert isinstance(wrapper, CPUAmpOptimWrapper) and isinstance(wrapper, AmpOptimWrapper)
    with wrapper.optim_context(model):
        out = model(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16
    before = model.weight.detach().clone()
    wrapper.update_params(out.float().pow(2).mean())
    assert not torch.equal(before, model.weight)
    state = wrapper.state_dict()
    state['loss_scaler'] = {'scale': 65536.0}  # a GPU AMP checkpoint resumed on CPU
    wrapper.load_state_dict(state)


@requires_no_gpu
def test_upstream_amp_wrapper_asserts_without_patch():
    """What the patch fixes: mmengine's own __init__ refuses CPU-only machines."""
    model = torch.nn.Linear(2, 2)
    obj = object.__new__(AmpOptimWrapper)
    with pytest.raises(AssertionError, match='only available'):
        AmpOptimWrapper.__init__(obj, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    assert type(OPTIM_WRAPPERS.build(dict(
        type='OptimWrapper', optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))) \
        is OptimWrapper


def test_numpy2_names_restored_only_where_needed():
    assert not hasattr(np, 'in1d')  # numpy 2.4 removed it; we do not put it back globally
    from mmpretrain.evaluation.metrics import retrieval
    assert retrieval.np.in1d is np.isin
    recall = retrieval.RetrievalRecall.calculate(
        torch.tensor([[0.9, 0.1, 0.3], [0.2, 0.8, 0.1]]), [[0], [2]], topk=(1, 3),
        target_indices=True)
    assert [float(r) for r in recall] == [50.0, 100.0]


def test_numpy2_pixel_group_module_gets_float():
    import sys

    import mmcv.ops  # noqa: F401  (mmcv.ops.pixel_group the name is the function)
    pg = sys.modules['mmcv.ops.pixel_group']
    assert pg.np.float is float and pg.np.zeros is np.zeros


@requires_no_gpu
def test_cpu_distributed_init_uses_gloo(monkeypatch):
    """mmengine's pytorch launcher path initialises a gloo group on CPU (1-process world)."""
    import multiprocessing as mp

    import torch.distributed as dist
    from mmengine.dist import init_dist
    if mp.get_start_method(allow_none=True) is None:
        mp.set_start_method('fork')  # else init_dist switches this test process to 'spawn'
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', '29533')
    init_dist('pytorch', backend='nccl')
    try:
        assert dist.get_backend() == 'gloo'
        t = torch.ones(1)
        dist.all_reduce(t)
        assert t.item() == 1
    finally:
        dist.destroy_process_group()


def test_adjust_hue_negative_shift_wraps_like_numpy1():
    """mmcv's adjust_hue shifts the uint8 hue by np.uint8(255·h); numpy 2 refuses a negative h
    (OverflowError in mmpretrain's ColorJitter). The patch restores numpy 1's wrap-around."""
    import cv2
    import mmcv
    import mmmask  # noqa: F401  (applies the patches)
    from mmmask.registry import TRANSFORMS
    img = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    for backend in ('cv2', 'pillow'):
        out = mmcv.adjust_hue(img, -0.1, backend=backend)
        # a shift of int(-25.5) mod 256 = 231 equals a shift of 231/255 ≈ +0.906 of the hue wheel
        assert out.shape == img.shape and out.dtype == np.uint8
        assert not np.array_equal(out, img)
    h, s, v = cv2.split(cv2.cvtColor(img, cv2.COLOR_BGR2HSV_FULL))
    expect = cv2.cvtColor(cv2.merge([((h.astype(np.int64) - 25) % 256).astype(np.uint8), s, v]),
                          cv2.COLOR_HSV2BGR_FULL)
    np.testing.assert_array_equal(mmcv.adjust_hue(img, -0.1, backend='cv2'), expect)
    # positive shifts are the original function's
    np.testing.assert_array_equal(mmcv.adjust_hue(img, 0.2, backend='cv2'),
                                  mmcv.image.photometric.adjust_hue(img, 0.2, backend='cv2'))
    jitter = TRANSFORMS.build(dict(type='mmpretrain.ColorJitter', hue=0.5))
    for _ in range(20):  # about half of the draws are negative
        assert jitter(dict(img=img.copy()))['img'].shape == img.shape
