# SeqSAM's head (Towle et al.): SAM's single-mask decoder unrolled M times with a recurrent
# module, Hungarian-matched Dice, randomised strided pooling when M > K. Applied to a
# box-prompted SAM model config with `model = dict(decode_head={{_base_.seqsam_head}})`.
seqsam_head = dict(
    type='SeqSAMHead',
    num_hypotheses=3,  # M in training and the default at test time
    train_selection='strided',  # Table 1B: 'random' ("Random K"), 'first' ("First K")
    bptt_logits=True,  # False: Table 1B "No backprop"
    # empty annotations take part in the matching with zero weight (the official code's
    # label_mask); ignore_empty=False trains masks towards them too
    loss_decode=dict(type='HungarianDiceLoss', ignore_empty=True, loss_weight=1.0),
)
