# Multi-resolution LookupViT-B/16: every training step draws the compressed grid from
# {3x3, 5x5, 7x7, 10x10}, so that one model serves several compute budgets. Evaluated at 10x10;
# evaluate the same checkpoint at another M with
#   --cfg-options model.backbone.test_compressed_grid=5
_base_ = ['./lookupvit-base-p16-10x10_8xb128_in1k.py']
model = dict(
    backbone=dict(compressed_grid=[(10, 10), (7, 7), (5, 5), (3, 3)],
                  test_compressed_grid=(10, 10)))
