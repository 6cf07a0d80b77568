# Former name, kept for the commands and scripts that use it; configs are now named
# method_backbone_dataset[_setting].
_base_ = ['./sam-mcl_vit-tiny_synthetic-lesion_pure-wta.py']
