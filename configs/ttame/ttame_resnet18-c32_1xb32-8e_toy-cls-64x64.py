# T-TAME explaining the toy "ImageNet" ResNet-18-c32 (configs/quickstart/
# resnet18-c32_1xb32-10e_toy-cls-64x64.py). Train that classifier first, then:
#   python tools/train.py configs/ttame/ttame_resnet18-c32_1xb32-8e_toy-cls-64x64.py \
#       --cfg-options \
#       model.classifier_checkpoint=work_dirs/resnet18-c32_1xb32-10e_toy-cls-64x64/epoch_10.pth
# As the paper's ResNet-50 setting: taps layer2/3/4, 'raw_normalize' masking, published loss,
# SGD-Nesterov + one-cycle; 8 epochs at batch 32. Toy change: peak lr 1e-2 (paper 1e-3) because
# the toy run has 504 iterations instead of the paper's ~8 ImageNet-subset epochs.
_base_ = ['../quickstart/resnet18-c32_1xb32-10e_toy-cls-64x64.py']

model = dict(
    _delete_=True,
    type='mmmask.TAMEClassifier',
    classifier={{_base_.model}},
    classifier_checkpoint='work_dirs/resnet18-c32_1xb32-10e_toy-cls-64x64/epoch_10.pth',
    feature_layers=['backbone.layer2', 'backbone.layer3', 'backbone.layer4'],
    version='TTAME',
    input_size=(64, 64),
    train_method='raw_normalize',
    masking='random',
    drop_fractions=[0.0, 0.5, 0.85])

optim_wrapper = dict(
    _delete_=True,
    optimizer=dict(type='SGD', lr=1e-2, momentum=0.9, nesterov=True, weight_decay=5e-4),
    paramwise_cfg=dict(bias_decay_mult=0.))
param_scheduler = [dict(type='OneCycleLR', eta_max=1e-2, by_epoch=True, begin=0, end=8,
                        convert_to_iter_based=True)]
train_cfg = dict(by_epoch=True, max_epochs=8, val_interval=8)
val_evaluator = dict(_delete_=True, type='mmmask.ExplanationADIC')
test_evaluator = val_evaluator
default_hooks = dict(checkpoint=dict(interval=8, max_keep_ckpts=1))
