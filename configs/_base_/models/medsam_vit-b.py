# MedSAM as SeqSAM's Table 1 baseline (Ma et al.'s weights): box-prompted SAM ViT-B, single mask
# output, trained as the official SeqSAM code trains it: Dice alone (MedSAM's paper adds BCE:
# add dict(type='MaskBCELoss') to loss_decode), against one random non-empty reader drawn
# independently of the box's reader (train_target='prompted': the box's own reader), and SAM's
# input normalisation, which the official code's processor applies to every model
# (MedSAM itself expects [0, 1]: box_prompt_medsam_vit-b.py's normalisation).
# The official network and loss (HuggingFace SamModel from wanglab/medsam-vit-base, quirks
# included): its checkpoints convert with tools/model_converters/hf_sam2mmsam.py.
_base_ = ['./box_prompt_medsam_vit-b.py']
data_preprocessor = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(
        type='MedSAMHead',
        # HF SamModel's two-way blocks: LayerNorm eps 1e-6 (segment-anything: 1e-5)
        mask_decoder=dict(two_way_layer_norm_eps=1e-6),
        train_target='random_reader',
        # MONAI DiceLoss(sigmoid, squared_pred) on (N, H, W): a Dice per row, averaged, with
        # smoothing 1e-5 (mmsam's whole-mask Dice: eps=1.0, squared_pred=False, per_row=False)
        loss_decode=[dict(type='MaskDiceLoss', eps=1e-5, squared_pred=True, per_row=True,
                          loss_weight=1.0)],
    ),
)
