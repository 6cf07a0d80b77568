# Former name, kept for the commands and scripts that use it; configs are now named
# method_backbone_dataset[_setting].
_base_ = ['./hsam_vit-b_synapse_10pct_224-round-trip.py']
