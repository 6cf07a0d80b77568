# SAM MCL on the synthetic lesions with relaxed winner-takes-all (Rupprecht et al., ICCV 2017:
# the winner's loss weighs 0.95, each loser's 0.025). The tiny MedSAM trained only SAM's
# single-mask token, so its three multi-mask heads start untrained, and with pure WTA
# (sam-mcl_vit-tiny_synthetic-lesion_pure-wta.py) the two that never win stay untrained (see
# README).
_base_ = ['./sam-mcl_vit-tiny_synthetic-lesion_pure-wta.py']
model = dict(decode_head=dict(loss_decode=dict(relaxation=0.05)))
