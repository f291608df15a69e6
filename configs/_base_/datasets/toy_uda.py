# Built-in domain-adaptation pair: the toy scenes painted in a source style and in a shifted target
# style (dusk palette, striped ground, warm digits, blur, noise). ADE20K layout under
# data/toy/uda/{source,target}; labels are available for both, the target ones only for evaluation.
_base_ = './toy_seg.py'
data_root = 'data/toy/uda/'
source_train = dict(
    type='mmmask.ToyData',
    world='uda',
    reader='mmseg.BaseSegDataset',
    data_root=data_root,
    data_prefix=dict(
        img_path='source/images/training', seg_map_path='source/annotations/training'),
    reduce_zero_label=True,
    pipeline={{_base_.train_pipeline}})
target_train = dict(
    type='mmmask.ToyData',
    world='uda',
    reader='mmseg.BaseSegDataset',
    data_root=data_root,
    data_prefix=dict(
        img_path='target/images/training', seg_map_path='target/annotations/training'),
    reduce_zero_label=True,
    pipeline={{_base_.train_pipeline}})
train_dataloader = dict(dataset=source_train)
val_dataloader = dict(
    dataset=dict(
        world='uda',
        data_root=data_root,
        data_prefix=dict(
            img_path='target/images/validation',
            seg_map_path='target/annotations/validation')))
test_dataloader = val_dataloader
