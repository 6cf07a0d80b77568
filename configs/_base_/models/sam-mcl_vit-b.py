# SAM multiple choice learning (SeqSAM's baseline): SAM's 3 mask outputs, winner-takes-all
# Dice against one random non-empty reader per step, drawn independently of the box's reader,
# as the official SeqSAM code ('all_annotations': every reader trains its best mask).
# The official network and loss (HuggingFace SamModel, quirks included): official checkpoints
# convert with tools/model_converters/hf_sam2mmsam.py and load strictly.
_base_ = ['./box_prompt_sam_vit-b.py']
model = dict(
    decode_head=dict(
        type='SAMMCLHead',
        # HF SamModel's two-way blocks: LayerNorm eps 1e-6 (segment-anything: 1e-5)
        mask_decoder=dict(num_multimask_outputs=3, two_way_layer_norm_eps=1e-6),
        train_target='random_reader',
        # MONAI DiceLoss(sigmoid, squared_pred) on (N, H, W): a Dice per row, averaged, with
        # smoothing 1e-5 (mmsam's whole-mask Dice: eps=1.0, squared_pred=False, per_row=False)
        loss_decode=dict(type='MultipleChoiceDiceLoss', eps=1e-5, squared_pred=True,
                         per_row=True, loss_weight=1.0),
    ),
)
