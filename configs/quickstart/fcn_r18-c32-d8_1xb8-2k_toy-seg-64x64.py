# Quickstart: a small dilated ResNet-18 (mmseg ResNetV1c, 32 base channels, output stride 8) with an
# FCN head, trained from scratch on the built-in toy scenes (64x64, 12 classes) on the CPU.
# Digits cover ~9% of the pixels; Dice next to cross-entropy keeps them from being drowned by
# sky/ground early in training.
_base_ = [
    '../_base_/seg_runtime.py', '../_base_/datasets/toy_seg.py',
    '../_base_/schedules/toy_2k.py', '../_base_/models/fcn_r18-c32-d8_toy.py'
]
