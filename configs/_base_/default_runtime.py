# Runtime shared by every mmmask config. Task runtimes (seg/det/cls_runtime.py) add the scope.
# `custom_imports` loads mmmask (its registries and the compatibility fixes for the 2026 stack).
custom_imports = dict(imports=['mmmask'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # NCCL on GPUs; without CUDA mmmask switches the process group to gloo automatically.
    dist_cfg=dict(backend='nccl'),
)
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
