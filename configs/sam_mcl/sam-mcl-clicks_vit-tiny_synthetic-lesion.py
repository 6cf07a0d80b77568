# SAM MCL + clicks on the synthetic lesions (issue 24): sam-mcl_vit-tiny_synthetic-lesion.py
# (3 hypotheses, relaxed winner-takes-all, frozen tiny-MedSAM encoder) fine-tuned with
# iterative click training on the budget of configs/medsam/medsam-clicks_vit-tiny_synthetic-lesion.py:
# per step the box round and 3 click rounds (next_click on the previous round's consensus, the
# previous low-res logits fed back), 4 epochs (200 iterations) at lr 1e-3 with warm-up and cosine.
# The box-only control on the same budget: --cfg-options model.train_cfg.click_iterations=0.
# Test: the CVPR 2025 protocol (a box, then 5 clicks at the largest error); the suggestion
# user: model.test_cfg.interactive.user=suggestion (docs/interactive.md).
_base_ = ['./sam-mcl_vit-tiny_synthetic-lesion.py']
model = dict(train_cfg=dict(click_iterations=3, feed_back_mask=True),
             test_cfg=dict(interactive=dict(num_clicks=5, user='error')))
max_epochs = 4
optim_wrapper = dict(optimizer=dict(lr=1e-3))
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
