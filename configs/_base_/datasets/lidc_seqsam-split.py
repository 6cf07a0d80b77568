# LIDC-IDRI as lidc.py, with the official SeqSAM split instead of the by-series one: convert with
#   python tools/dataset_converters/lidc.py data_lidc.pickle data/lidc_seqsam-split --split official
# (contiguous blocks in pickle order: val [0, s), test [s, 2s), train [2s, N), s = floor(0.1 N);
# crops of one series fall into two splits, so prefer data/lidc (by series) for new work).
_base_ = ['./lidc.py']
data_root = 'data/lidc_seqsam-split'
train_dataloader = dict(dataset=dict(data_root=data_root, split_protocol='official'))
val_dataloader = dict(dataset=dict(data_root=data_root, split_protocol='official'))
test_dataloader = dict(dataset=dict(data_root=data_root, split_protocol='official'))
