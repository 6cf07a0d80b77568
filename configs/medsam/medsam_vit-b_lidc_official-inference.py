# MedSAM's released model (medsam_vit_b.pth, Ma et al.) as its own inference script runs it
# (bowang-lab/MedSAM, MedSAM_Inference.py): ViT-B at 1024, the image scaled to [0, 1] with no
# SAM mean / std, one box, token 0 (multimask_output=False). For testing or running the
# released weights (tools/test.py, tools/infer.py) on LIDC-IDRI's readers; the file loads as the
# three parts' checkpoint without conversion. Checked against the official code's outputs by
# tools/model_converters/check_official.py (../shared/fixtures/official/medsam).
# MedSAM's own training loss (Dice + BCE against the box's object) is kept for fine-tuning.
_base_ = [
    '../_base_/models/box_prompt_medsam_vit-b.py',
    '../_base_/datasets/lidc.py',
    '../_base_/schedules/seqsam_official_schedule.py',
    '../_base_/multi_annotator_runtime.py',
]
model = dict(
    decode_head=dict(
        type='MedSAMHead',
        train_target='prompted',
        loss_decode=[dict(type='MaskDiceLoss', loss_weight=1.0),
                     dict(type='MaskBCELoss', loss_weight=1.0)]),
    # MedSAM_Inference's output: the sigmoid of the 256 x 256 low-res logits resized once,
    # bilinearly, to the raw image size, > 0.5
    test_cfg=dict(output_resize='low_res_probabilities'))
default_hooks = dict(checkpoint=dict(save_best=None))
