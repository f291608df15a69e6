_base_ = ['../../../configs/quickstart/fcn_r18-c32-d8_1xb8-2k_toy-seg-64x64.py']
custom_imports = dict(imports=['mmmask', 'projects.example_project.dummy'])
model = dict(backbone=dict(type='mmmask.DummyResNet'))
