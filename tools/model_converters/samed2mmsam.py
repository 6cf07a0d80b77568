"""Convert an official SAMed model (SAM base + SAMed LoRA file) into one mmsam checkpoint.

    python tools/model_converters/samed2mmsam.py SAM_BASE LORA OUT [--img-size 512]
        [--pos-embed-resize bilinear] [--overwrite]

SAM_BASE is segment-anything's file the model was trained from (``sam_vit_b_01ec64.pth``;
``sam_vit_h_4b8939.pth`` for SAMed_h), LORA the file SAMed's ``save_lora_parameters`` wrote
(``epoch_159.pth``: ``w_a_NNN`` / ``w_b_NNN``, ``prompt_encoder.*``, ``mask_decoder.*``). The
base's position tables are resized to ``--img-size`` as the official loader does (bilinear).
Every key of both files is used or dropped with the reason printed; a key that does not fit
stops the conversion with its name. SAMed_s files (decoder LoRA) are refused. The output is
written to a temporary name and renamed; use it as ``load_from`` / tools/test.py's checkpoint
with the printed config.
"""
import argparse
import os.path as osp

from mmsam.models.converters import run_conversion, save_converted
from mmsam.models.converters.samed import convert_samed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('base', help='SAM base checkpoint (segment-anything layout)')
    parser.add_argument('lora', help='SAMed LoRA file (LoRA_Sam.save_lora_parameters)')
    parser.add_argument('out', help='output mmsam checkpoint (.pth)')
    parser.add_argument('--img-size', type=int, default=512,
                        help='input size the model was trained at (SAMed: 512)')
    parser.add_argument('--pos-embed-resize', default='bilinear',
                        choices=('bilinear', 'bicubic'),
                        help='how the base position table is resized (official: bilinear)')
    parser.add_argument('--overwrite', action='store_true')
    args = parser.parse_args(argv)
    state, summary = run_conversion(args.out, args.overwrite, convert_samed,
                                    args.base, args.lora, args.img_size, args.pos_embed_resize)
    enc, dec = summary['encoder'], summary['decoder']
    meta = dict(converted_from=[osp.basename(args.base), osp.basename(args.lora)],
                converter='samed2mmsam.py', img_size=args.img_size,
                pos_embed_resize=args.pos_embed_resize)
    save_converted(state, args.out, meta)
    print(f'wrote {args.out}: {len(state)} tensors; encoder {enc["name"] or "custom"} '
          f'(width {enc["embed_dim"]}, depth {enc["depth"]}, global blocks '
          f'{enc["global_attn_indexes"]}), LoRA rank {summary["rank"]}, decoder width '
          f'{dec["transformer_dim"]}, {summary["num_classes"]} classes, input {args.img_size}')
    if summary['config']:
        print(f'config: {summary["config"]}')
    else:
        print('config: configs/samed/samed_vit-b_synapse.py with model.backbone.arch set to '
              f'{enc["name"] or "the widths above"} (--cfg-options model.backbone.arch='
              f'{enc["name"] or "..."}); SAMed_h is ViT-H at 512')
    if summary['rank'] != 4 or summary['num_classes'] != 9:
        print(f'note: the config has LoRA rank 4 and 9 classes; set '
              f'model.backbone.adapter.rank={summary["rank"]} and '
              f'model.decode_head.num_classes={summary["num_classes"]}')


if __name__ == '__main__':
    main()
