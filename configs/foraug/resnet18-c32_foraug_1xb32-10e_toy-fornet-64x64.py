# ForAug on the toy world (Nauen et al., arXiv 2503.09399): the quickstart ResNet-18-c32 digit
# classifier (configs/quickstart/resnet18-c32_1xb32-10e_toy-cls-64x64.py, same model, schedule and
# augmentation) trained on ForAug recombinations of its own training crops.
# Toy ForNet (mmmask.ForNetToyData, built once into the toy cache and linked at data/toy/fornet):
# the 2,000 + 500 toy digit crops of configs/_base_/datasets/toy_cls.py (32 px) re-rendered with
# their known digit mask; foreground = the digit, background = the crop with the digit inpainted
# (OpenCV Telea), the crops themselves are the "original images". Recombination with the official
# defaults (background 'all', pruning 0.8, size jitter 0.3, 'range' size mode, uniform position),
# except the edge-blur sigma: 0.5 px instead of 4 (digit strokes are ~2 px wide at 32 px; the
# official 4 is for ImageNet-sized images). Evaluated on the toy val crops like the quickstart
# model, and with tools/analysis_tools/foraug_bias_eval.py on the toy ForNet val split.
#   python tools/train.py configs/foraug/resnet18-c32_foraug_1xb32-10e_toy-fornet-64x64.py
_base_ = ['../quickstart/resnet18-c32_1xb32-10e_toy-cls-64x64.py']

fornet_root = 'data/toy/fornet/'
train_pipeline = [
    dict(type='LoadImageFromFile'),  # the background
    dict(type='mmmask.LoadForegroundFromFile'),
    dict(type='mmmask.ForegroundBackgroundRecombine', fg_scale_jitter=0.3, fg_size_mode='range',
         fg_bates_n=1, mask_smoothing_sigma=0.5, rel_jut_out=0.0),
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.6, 1.0)),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='mmmask.ForNetToyData',
        data_root=fornet_root,
        source='cls',
        split='train',
        background_combination='all',
        pruning_ratio=0.8,
        pipeline=train_pipeline))
