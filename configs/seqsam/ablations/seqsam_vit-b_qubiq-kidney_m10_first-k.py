# SeqSAM Table 1B ablation on QUBIQ kidney: First K: the first K masks of the 10 enter the
# matching.
_base_ = ['../seqsam_vit-b_qubiq-kidney_m10.py']
model = dict(decode_head=dict(train_selection='first'))
