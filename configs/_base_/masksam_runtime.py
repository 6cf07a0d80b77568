# The runtime of MaskSAM (nnU-Net protocol) configs: default_runtime.py, except that the final
# checkpoint is the one evaluated (nnUNetv2_predict uses checkpoint_final; no "best" copy is
# kept) and a checkpoint is written every 50 epochs for resuming (each epoch is short: 250
# iterations).
_base_ = ['./default_runtime.py']
env_cfg = dict(cudnn_benchmark=True)  # fixed patch size, as nnU-Net
default_hooks = dict(
    checkpoint=dict(_delete_=True, type='CheckpointHook', by_epoch=True, interval=50,
                    max_keep_ckpts=2, save_last=True),
)
