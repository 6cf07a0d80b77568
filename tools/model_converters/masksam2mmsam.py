"""Convert an official MaskSAM checkpoint (bxie9/MaskSAM, nnU-Net v2) into an mmsam checkpoint.

    python tools/model_converters/masksam2mmsam.py CHECKPOINT_FINAL_PTH OUT [--overwrite]

CHECKPOINT_FINAL_PTH is what a MaskSAM trainer (``MaskSAM_Synapse``, ``MaskSAM_ACDC``,
``MaskSAM_AMOS``) saves in nnU-Net's results folder (``fold_k/checkpoint_final.pth``): the
network under ``network_weights`` plus nnU-Net's training state. It is read weights-only.
Every key is used or dropped with the reason printed (the training state, the duplicate
``.all_modules.`` registrations, ACDC's shared skip module); a key or shape that does not fit
stops the conversion with its name. Widths are read from the file. The output is written to a
temporary name and renamed; use it as tools/test.py's checkpoint (or ``load_from``) with the
printed config.
"""
import argparse
import os.path as osp

from mmsam.models.converters import run_conversion, save_converted
from mmsam.models.converters.masksam import convert_masksam


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint', help="an nnU-Net MaskSAM checkpoint (checkpoint_final.pth)")
    parser.add_argument('out', help='output mmsam checkpoint (.pth)')
    parser.add_argument('--overwrite', action='store_true')
    args = parser.parse_args(argv)
    state, summary = run_conversion(args.out, args.overwrite, convert_masksam, args.checkpoint)
    enc, gen = summary['encoder'], summary['generator']
    save_converted(state, args.out, dict(converted_from=osp.basename(args.checkpoint),
                                         converter='masksam2mmsam.py',
                                         trainer=str(summary['trainer'])))
    print(f'wrote {args.out}: {len(state)} tensors; {summary["trainer"]}: encoder '
          f'{enc["name"] or "custom"} (width {enc["embed_dim"]}, depth {enc["depth"]}), '
          f'{summary["patch"]} x {summary["patch"]} patches of T={summary["num_frames"]} slices '
          f'(encoder input {summary["img_size"]}, SAM frame {summary["canvas_size"]}), '
          f'Q={gen["num_queries"]} queries, C={summary["num_classes"]} classes, prompt '
          f'generator widths {gen["channels"]}')
    print(f'config: {summary["config"]}')
    print('the config must have these widths (the official ones for the trainer); a file '
          'trained with other settings needs them set with --cfg-options')


if __name__ == '__main__':
    main()
