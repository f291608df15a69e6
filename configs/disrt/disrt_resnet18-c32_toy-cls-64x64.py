# DiSRT oddity testbench on the toy digit world (configs/quickstart ResNet-18-c32, 64x64 inputs):
# each of 200 validation digits (spread evenly over the set) is shown with two versions whose
# 4x4 grid of 16x16 patches is rearranged (every patch moves; local texture kept); the model's
# softmax scores (pred_score) pick the odd one by cosine distance. Chance 33.3 %.
#   python tools/test.py configs/disrt/disrt_resnet18-c32_toy-cls-64x64.py CHECKPOINT
# Any layer / pooling and a PNG of the triplets: tools/analysis_tools/disrt_testbench.py.
_base_ = ['../quickstart/resnet18-c32_1xb32-10e_toy-cls-64x64.py']
custom_imports = dict(imports=['mmmask.evaluation.robustness'], allow_failed_imports=False)
test_dataloader = dict(
    batch_size=48,  # a multiple of 3: whole triplets per batch (not required by the metric)
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        _delete_=True,
        type='mmmask.OddityTriplets',
        dataset=dict(
            type='mmmask.ToyData',
            world='cls',
            reader='mmpretrain.CustomDataset',
            data_root='data/toy/cls/',
            data_prefix='val',
            pipeline=[dict(type='LoadImageFromFile'), dict(type='Resize', scale=(64, 64))]),
        distortion=dict(type='mmmask.PatchShuffle', grid=4, mode='shuffle'),
        pipeline=[dict(type='PackInputs')],
        mode='disrt',
        num_triplets=200,
        seed=0))
test_evaluator = dict(_delete_=True, type='mmmask.OddityAccuracy', feature_key='pred_score',
                      distance='cosine')
