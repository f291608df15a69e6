"""Path-ensemble ViT (Chang et al., ICCV 2023): the re-parameterised mmpretrain ViT with a pruned
path and per-channel EnsembleScale, on a non-square grid. (``PathEnsembleClassifier``, registered
from the same module, is a whole model and tested in test_path_ensemble.py.)"""

_ARCH = dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)

CASES = {
    'PathEnsembleViT': dict(
        kwargs=dict(arch=_ARCH, img_size=32, patch_size=16, out_type='featmap',
                    prune_paths=['attn.1'], ensemble_scale='channel'),
        out_shapes=[(32, 4, 6)]),
}
