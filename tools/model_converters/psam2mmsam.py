"""Convert an official Probabilistic SAM file (tbwa233/Probabilistic-SAM) into an mmsam checkpoint.

    python tools/model_converters/psam2mmsam.py PSAM_PTH OUT [--overwrite]

PSAM_PTH is what the official main.py saves (``torch.save(ProbabilisticSAM.state_dict())``):
``sam.*`` in segment-anything's layout, ``prior_net.*`` / ``posterior_net.*``,
``fcomb.decoder.*`` (a second copy of ``sam.mask_decoder``, checked equal and dropped) and
``fcomb.z_projector.*``. Every key is used or dropped with the reason printed; a key that does
not fit stops the conversion with its name. The output is written to a temporary name and
renamed; use it as ``load_from`` / tools/test.py's checkpoint with the printed config.
"""
import argparse
import os.path as osp

from mmsam.models.converters import run_conversion, save_converted
from mmsam.models.converters.psam import convert_psam


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint', help='official ProbabilisticSAM state dict (.pth)')
    parser.add_argument('out', help='output mmsam checkpoint (.pth)')
    parser.add_argument('--overwrite', action='store_true')
    args = parser.parse_args(argv)
    state, summary = run_conversion(args.out, args.overwrite, convert_psam, args.checkpoint)
    print('added decode_head.kl_iter = 0 (PSAMHead\'s KL warm-up counter; the official model '
          'has none)')
    enc, dec = summary['encoder'], summary['decoder']
    save_converted(state, args.out, dict(converted_from=osp.basename(args.checkpoint),
                                         converter='psam2mmsam.py'))
    print(f'wrote {args.out}: {len(state)} tensors; encoder {enc["name"] or "custom"} '
          f'(width {enc["embed_dim"]}, depth {enc["depth"]}) at {summary["img_size"]} x '
          f'{summary["img_size"]}, decoder width {dec["transformer_dim"]}, latent '
          f'{summary["latent_dim"]}, prior/posterior widths {summary["net_channels"]}')
    print(f'config: {summary["config"]}')
    if summary['latent_dim'] != 6 or tuple(summary['net_channels']) != (32, 64):
        print(f'note: the config has latent 6 and nets (32, 64); set '
              f'model.decode_head.latent_dim={summary["latent_dim"]} and '
              f'net_channels={summary["net_channels"]}')


if __name__ == '__main__':
    main()
