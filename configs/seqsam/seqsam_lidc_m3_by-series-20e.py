# Former name, kept for the commands and scripts that use it; configs are now named
# method_backbone_dataset[_setting].
_base_ = ['./seqsam_vit-b_lidc_m3_by-series-20e.py']
