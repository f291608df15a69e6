# Evaluate a (path-ensemble or plain) DeiT-S checkpoint with paths pruned from the final sum — the
# paper's path pruning at inference. Which paths the paper prunes is not known to us: choose them
# with tools/analysis_tools/path_ensemble_probe.py (leave-one-out accuracy per path) and list them
# here, e.g. the MSA paths of the last layers below (an example, not the paper's choice):
#   python tools/test.py configs/path_ensemble/path-ensemble_deit-small-pruned_in1k-eval.py CKPT
_base_ = ['./path-ensemble_deit-small_4xb256_in1k.py']
model = dict(backbone=dict(prune_paths=['attn.10', 'attn.11']))
