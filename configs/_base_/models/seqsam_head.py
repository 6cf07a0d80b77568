# SeqSAM's head (Towle et al.): SAM's single-mask decoder unrolled M times with a recurrent
# module, Hungarian-matched Dice, randomised strided pooling when M > K. Applied to a
# box-prompted SAM model config with `model = dict(decode_head={{_base_.seqsam_head}})`.
# The official network and loss (BenjaminTowle/SeqSAM, HuggingFace SamModel), quirks included,
# so official checkpoints convert (tools/model_converters/hf_sam2mmsam.py), load strictly and
# give the official outputs; mmsam's readings are the commented values (configs/seqsam/README.md).
seqsam_head = dict(
    type='SeqSAMHead',
    num_hypotheses=3,  # M in training and the default at test time
    train_selection='strided',  # Table 1B: 'random' ("Random K"), 'first' ("First K")
    bptt_logits=True,  # False: Table 1B "No backprop"
    recurrent_input_order='zh',  # official CRnnCell: cat([Z, H]); 'hz': cat([H, Z])
    # HF SamModel's two-way blocks: LayerNorm eps 1e-6 (segment-anything: 1e-5)
    mask_decoder=dict(two_way_layer_norm_eps=1e-6),
    loss_decode=dict(
        type='HungarianDiceLoss',
        # MONAI DiceLoss(sigmoid, squared_pred) of whole masks, smoothing 1e-5
        # (mmsam: eps=1.0, squared_pred=False)
        eps=1e-5, squared_pred=True, per_row=False,
        # empty readers take part in the matching with zero weight; the official code zeroes
        # the j-th matched pair by the j-th reader's emptiness ('position'; 'reader': the pair
        # whose reader is empty)
        ignore_empty=True, empty_weighting='position',
        normalizer='pairs',  # / K, empty readers included ('non_empty': / non-empty readers)
        batch_reduction='sum',  # summed over the batch ('mean')
        loss_weight=1.0),
)
