# H-SAM 10% Synapse with the official test-time input path: the official test.py
# (utils.test_single_volume, --input_size 224 default, --img_size 512) zooms every 512 slice to
# 224 and back to 512 with scipy zoom(order=3) before the 512 network, then averages the two
# stages' logits (--stage 3). The paper's 80.35 DSC / 15.54 HD (Table 1) for the released
# 220_epoch_299.pth were measured this way: use this config to test the converted official
# checkpoint (tools/model_converters/hsam2mmsam.py; README, Model zoo).
# SAMDataPreProcessor applies one geometry in training and at test, so training with this
# config also round-trips the slices (images order 3, labels order 0).
_base_ = ['./hsam_vit-b_synapse_10pct.py']
model = dict(data_preprocessor=dict(fit='resize', interpolation='spline', via_size=(224, 224)))
