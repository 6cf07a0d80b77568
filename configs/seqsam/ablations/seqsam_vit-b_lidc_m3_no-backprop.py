# SeqSAM Table 1B ablation on LIDC-IDRI: No backprop: the re-encoded logits are detached, gradient
# flows between steps only through H.
_base_ = ['../seqsam_vit-b_lidc_m3.py']
model = dict(decode_head=dict(bptt_logits=False))
