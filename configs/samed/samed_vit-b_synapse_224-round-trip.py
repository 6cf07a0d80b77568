# SAMed on Synapse with the official test-time input path: the official test.py
# (test_single_volume, input_size 224, img_size 512) zooms every 512 slice to 224 and back to
# 512 with scipy zoom(order=3) before the 512 network (the argmax at 512 needs no back-zoom).
# The official paper numbers (81.88 DSC, 20.64 HD) were measured this way: use this config to
# test the converted official checkpoint (tools/model_converters/samed2mmsam.py).
# SAMDataPreProcessor applies one geometry in training and at test, so training with this
# config also round-trips the slices (images order 3, labels order 0), which is how the
# official training data reach the network (the released 224 training copy, zoomed to 512
# by RandomGenerator), except that the official code augments at 224, before the zoom up.
_base_ = ['./samed_vit-b_synapse.py']
model = dict(data_preprocessor=dict(fit='resize', interpolation='spline', via_size=(224, 224)))
