# Baseline of the toy ForAug experiment: the same model, schedule and pipeline, but every sample is
# the original toy crop (orig_img_prob=1.0; byte-identical to data/toy/cls/train), i.e. the
# quickstart classifier without recombination.
#   python tools/train.py configs/foraug/resnet18-c32_1xb32-10e_toy-fornet-orig-64x64.py
_base_ = ['./resnet18-c32_foraug_1xb32-10e_toy-fornet-64x64.py']

train_dataloader = dict(
    dataset=dict(orig_img_prob=1.0, orig_root='data/toy/fornet/orig/train', orig_ext='.png'))
