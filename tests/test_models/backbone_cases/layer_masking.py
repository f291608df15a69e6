"""Layer masking (ICCV 2023): the mmpretrain-ResNet-compatible LayerMaskedResNet.

Its default ``out_indices`` is mmpretrain ResNet's ``(3, )`` (a drop-in replacement), so the
generic out_indices test (which indexes ``out_shapes`` of the default outputs) is skipped; the
multi-stage outputs and ``out_indices=(-1, )`` are tested in
tests/test_models/test_layer_masking.py.
"""
CASES = {
    'LayerMaskedResNet': dict(
        kwargs=dict(depth=18, stem_channels=8, base_channels=8),
        out_shapes=[(64, 2, 3)],
        out_indices=False),
}
