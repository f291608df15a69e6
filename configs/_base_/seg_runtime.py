_base_ = './default_runtime.py'
default_scope = 'mmseg'
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
tta_model = dict(type='SegTTAModel')
