# SeqSAM Table 1B ablation on LIDC-IDRI: Random K: K random masks of the 10 enter the matching,
# not one per chunk.
_base_ = ['../seqsam_vit-b_lidc_m10.py']
model = dict(decode_head=dict(train_selection='random'))
