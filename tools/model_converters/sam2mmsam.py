"""Convert a segment-anything-layout file (SAM, MedSAM) into an mmsam checkpoint.

    python tools/model_converters/sam2mmsam.py SAM_PTH OUT [--img-size N]
        [--pos-embed-resize bicubic|bilinear] [--config CONFIG] [--overwrite]

SAM_PTH holds ``image_encoder.*``, ``prompt_encoder.*`` and ``mask_decoder.*`` (segment-
anything's ``Sam.state_dict()``: ``sam_vit_b_01ec64.pth``, MedSAM's ``medsam_vit_b.pth``).
mmsam's SAM parts also load such a file directly as their ``checkpoint``; this converter makes
the checkpoint that ``tools/test.py CONFIG CHECKPOINT`` and ``load_from`` expect. Every key is
checked against segment-anything's modules of the widths the file implies; a key that does not
fit stops the conversion with its name. The output is written atomically.
"""
import argparse
import os.path as osp

from mmsam.models.converters import run_conversion, save_converted
from mmsam.models.converters.medsam import (MEDSAM_INFERENCE_CONFIG,
                                            convert_sam_layout)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint', help='segment-anything-layout .pth (SAM, MedSAM)')
    parser.add_argument('out', help='output mmsam checkpoint (.pth)')
    parser.add_argument('--img-size', type=int, help='input size of the config, when it is '
                        'not the file\'s (the position tables are resized)')
    parser.add_argument('--pos-embed-resize', default='bicubic', choices=('bicubic', 'bilinear'))
    parser.add_argument('--config', default=MEDSAM_INFERENCE_CONFIG,
                        help='the config to print (default: MedSAM\'s own inference)')
    parser.add_argument('--overwrite', action='store_true')
    args = parser.parse_args(argv)
    state, summary = run_conversion(args.out, args.overwrite, convert_sam_layout,
                                    args.checkpoint, args.img_size, args.pos_embed_resize)
    enc, dec = summary['encoder'], summary['decoder']
    save_converted(state, args.out, dict(converted_from=osp.basename(args.checkpoint),
                                         converter='sam2mmsam.py', img_size=summary['img_size']))
    print(f'wrote {args.out}: {len(state)} tensors; encoder {enc["name"] or "custom"} (width '
          f'{enc["embed_dim"]}, depth {enc["depth"]}) at {summary["img_size"]}, decoder width '
          f'{dec["transformer_dim"]} with {dec["num_mask_tokens"]} mask tokens')
    print(f'config: {args.config}')


if __name__ == '__main__':
    main()
