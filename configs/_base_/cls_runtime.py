_base_ = './default_runtime.py'
default_scope = 'mmpretrain'
log_processor = dict(by_epoch=True)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
randomness = dict(seed=None, deterministic=False)
