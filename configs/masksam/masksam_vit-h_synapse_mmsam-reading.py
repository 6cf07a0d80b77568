# MaskSAM on Synapse with mmsam's reading of the paper instead of the official code's quirks
# (masksam_vit-h_synapse.py is the official network): the 256 patch fills SAM's frame (position
# table resized bicubically, prompt coordinates and dense PE of a 256 frame, not the top-left of
# a 1024 one); the windowed encoder blocks normalise before padding and run the DConv adapter on
# whole slices after the window attention, so slices of one case never mix with other
# windows; the auxiliary mask losses read logits (no double sigmoid). Same parameters; an
# official checkpoint loads but computes other outputs (check_official.py --config on the
# masksam fixture: pred_masks differ by up to 1.8).
_base_ = ['./masksam_vit-h_synapse.py']
model = dict(
    backbone=dict(pos_embed_resize='bicubic',
                  adapter=dict(norm_after_pad=False, space_adapter_on='slices')),
    decode_head=dict(prompt_encoder=dict(canvas_size=None), box_pixel_grid='encoder_input',
                     loss_decode=dict(aux_mask_input='logits')),
)
