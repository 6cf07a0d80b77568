# The SAM MCL synthetic-lesion config with random weights instead of the tiny MedSAM checkpoint
# (which a test machine does not have): for tests of tools, hooks and pictures.
_base_ = ['../../../configs/sam_mcl/sam-mcl_vit-tiny_synthetic-lesion.py']
model = dict(backbone=dict(checkpoint=None),
             decode_head=dict(prompt_encoder=dict(checkpoint=None),
                              mask_decoder=dict(checkpoint=None)))
