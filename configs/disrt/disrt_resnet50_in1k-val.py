# DiSRT oddity testbench on ImageNet-1k val with mmpretrain's supervised ResNet-50 (the paper's
# supervised CNN baseline; its DiST predecessor used 2400 ImageNet images, so do we: 2400 val
# images spread evenly over the 50k). Each image (resize 256, centre crop 224) is shown with two
# versions whose 4x4 grid of 56x56 patches is rearranged; the softmax scores pick the odd one by
# cosine distance (chance 33.3 %). Other layers (e.g. backbone.layer3) and a PNG of triplets:
#   python tools/analysis_tools/disrt_testbench.py configs/disrt/disrt_resnet50_in1k-val.py \
#       https://download.openmmlab.com/mmclassification/v0/resnet/\
#       resnet50_8xb32_in1k_20210831-ea4938fc.pth --layer neck  (one URL)
#   python tools/test.py configs/disrt/disrt_resnet50_in1k-val.py CHECKPOINT
# The paper's images are not public (no code or data release); the patch rearrangement is our
# distortion, see configs/disrt/README.md.
_base_ = ['mmpretrain::resnet/resnet50_8xb32_in1k.py']
custom_imports = dict(imports=['mmmask.evaluation.robustness'], allow_failed_imports=False)
test_dataloader = dict(
    batch_size=48,
    num_workers=4,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        _delete_=True,
        type='mmmask.OddityTriplets',
        dataset=dict(
            type='mmpretrain.ImageNet',
            data_root='data/imagenet',
            split='val',
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='ResizeEdge', scale=256, edge='short'),
                dict(type='CenterCrop', crop_size=224),
            ]),
        distortion=dict(type='mmmask.PatchShuffle', grid=4, mode='shuffle'),
        pipeline=[dict(type='PackInputs')],
        mode='disrt',
        num_triplets=2400,
        seed=0))
test_evaluator = dict(_delete_=True, type='mmmask.OddityAccuracy', feature_key='pred_score',
                      distance='cosine')
