# SeqSAM Table 1B ablation on QUBIQ kidney: No backprop: the re-encoded logits are detached,
# gradient flows between steps only through H.
_base_ = ['../seqsam_vit-b_qubiq-kidney_m3.py']
model = dict(decode_head=dict(bptt_logits=False))
