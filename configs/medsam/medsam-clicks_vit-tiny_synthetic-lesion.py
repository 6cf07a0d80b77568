# MedSAM + clicks on the synthetic lesions (issue 24): the tiny MedSAM
# (medsam_vit-tiny_synthetic-lesion.py, exported to checkpoints/tiny-medsam_synthetic-lesion.pth,
# see README) fine-tuned with iterative click training, as SAM-Med2D fine-tunes SAM: per step
# the frozen encoder runs once, then the box round and 3 click rounds, each click at the centre
# of the previous round's largest error region (next_click), the previous low-res logits fed
# back as the mask prompt, the Dice + BCE loss averaged over the 4 rounds
# (mmsam/models/segmentors/click_training.py). A short CPU budget: 4 epochs (200 iterations)
# at the from-scratch lr 1e-3 (the point and mask-prompt embeddings never trained before).
# The box-only control: --cfg-options model.train_cfg.click_iterations=0.
# Validation and test run the CVPR 2025 interactive protocol (a box, then 5 clicks at the
# largest error, the previous logits fed back) and score DSC / NSD after each step.
_base_ = ['./medsam_vit-tiny_synthetic-lesion.py']
model = _base_.sam_vit_tiny_128_pretrained
model.update(train_cfg=dict(click_iterations=3, feed_back_mask=True),
             test_cfg=dict(interactive=dict(num_clicks=5, user='error')))
max_epochs = 4
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
val_evaluator = dict(_delete_=True, type='InteractiveProtocolMetric')
test_evaluator = val_evaluator
default_hooks = dict(checkpoint=dict(interval=max_epochs, save_best='DSC_AUC_norm',
                                     rule='greater'))
