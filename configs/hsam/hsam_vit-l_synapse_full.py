# H-SAM on Synapse, all training slices (fully supervised): SAM ViT-L at 224 x 224 as the
# paper does for this setting (Sec. 4.2). Paper: 86.49 mean Dice, HD 8.18 (Table 1).
# Needs checkpoints/sam_vit_l_0b3195.pth and data/synapse (tools/dataset_converters/synapse.py).
_base_ = ['./hsam_vit-b_synapse_10pct.py']
img_size = 224
sam_checkpoint = 'checkpoints/sam_vit_l_0b3195.pth'
model = dict(
    data_preprocessor=dict(size=(img_size, img_size)),
    backbone=dict(arch='vit_l', img_size=img_size, checkpoint=sam_checkpoint),
    decode_head=dict(
        # CMAttn tokens are 14 x 14 = 196 wide at 224: 7 heads, as the official 224 build
        attention_heads=7,
        prompt_encoder=dict(img_size=img_size, checkpoint=sam_checkpoint),
        mask_decoder=dict(checkpoint=sam_checkpoint)),
    # the official 224 test: argmax at 224, then a nearest zoom of the labels to 512
    test_cfg=dict(label_resize='nearest'))
# The official 224 models train on a 224 copy of the training slices (zoomed from 512, cubic
# for the image, nearest for the label) and augment that copy.
resize = dict(type='Resize', scale=(img_size, img_size), keep_ratio=False,
              interpolation='bicubic')
train_dataloader = dict(dataset=dict(split='train', pipeline=[
    dict(type='LoadNpzSlice'), resize, {{_base_.hsam_augmentation}},
    dict(type='PackSegInputs', meta_keys={{_base_.meta_keys}})]))
# Only the image is resized for testing (cubic, as the official zoom order 3): the label keeps
# the slice's 512 x 512, where postprocess_result puts the prediction back, so the metric
# compares at full resolution, after model.test_cfg.label_resize='nearest' (above).
test_pipeline = [dict(type='LoadNpzSlice'),
                 dict(type='KeyMapper', mapping=dict(gt_seg_map=...), auto_remap=False,
                      transforms=[resize]),
                 dict(type='PackSegInputs', meta_keys={{_base_.meta_keys}})]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
