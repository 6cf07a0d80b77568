# SeqSAM Table 1B ablation on LIDC-IDRI: First K: the first K masks of the 10 enter the matching.
_base_ = ['../seqsam_vit-b_lidc_m10.py']
model = dict(decode_head=dict(train_selection='first'))
