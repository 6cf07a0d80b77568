"""Convert an official H-SAM model (SAM base + H-SAM LoRA file) into one mmsam checkpoint.

    python tools/model_converters/hsam2mmsam.py SAM_BASE LORA OUT [--img-size 512]
        [--pos-embed-resize bilinear] [--overwrite]

SAM_BASE is segment-anything's file the model was trained from (``sam_vit_b_01ec64.pth``;
``sam_vit_l_0b3195.pth`` for the 224 full-Synapse models), LORA the file H-SAM's
``save_lora_parameters`` wrote (e.g. ``220_epoch_299.pth``: ``w_a_NNN`` / ``w_b_NNN``,
``prompt_encoder.*`` with 11 point embeddings, its alias ``prompt_encoder2.*``,
``mask_decoder.*`` and ``mask_decoder2.*``). ``--img-size`` is the training input: 512 (the
512 build, stage-2 CMAttn 1024 wide) or 224 (the 224 build, 196 wide). Every key of both
files is used or dropped with the reason printed; a key that does not fit stops the
conversion with its name. The output is written to a temporary name and renamed; use it as
``load_from`` / tools/test.py's checkpoint with the printed config.
"""
import argparse
import os.path as osp

from mmsam.models.converters import run_conversion, save_converted
from mmsam.models.converters.hsam import convert_hsam


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('base', help='SAM base checkpoint (segment-anything layout)')
    parser.add_argument('lora', help='H-SAM LoRA file (LoRA_Sam.save_lora_parameters)')
    parser.add_argument('out', help='output mmsam checkpoint (.pth)')
    parser.add_argument('--img-size', type=int, default=512,
                        help='input size the model was trained at (512, or 224 for the '
                        'full-Synapse ViT-L models)')
    parser.add_argument('--pos-embed-resize', default='bilinear',
                        choices=('bilinear', 'bicubic'),
                        help='how the base position table is resized (official: bilinear)')
    parser.add_argument('--overwrite', action='store_true')
    args = parser.parse_args(argv)
    state, summary = run_conversion(args.out, args.overwrite, convert_hsam,
                                    args.base, args.lora, args.img_size, args.pos_embed_resize)
    enc, dec, s2 = summary['encoder'], summary['decoder'], summary['stage2']
    meta = dict(converted_from=[osp.basename(args.base), osp.basename(args.lora)],
                converter='hsam2mmsam.py', img_size=args.img_size,
                pos_embed_resize=args.pos_embed_resize)
    save_converted(state, args.out, meta)
    print(f'wrote {args.out}: {len(state)} tensors; encoder {enc["name"] or "custom"} '
          f'(width {enc["embed_dim"]}, depth {enc["depth"]}, global blocks '
          f'{enc["global_attn_indexes"]}), LoRA rank {summary["rank"]}, decoder width '
          f'{dec["transformer_dim"]}, {summary["num_classes"]} classes, '
          f'{summary["num_point_embeddings"]} point embeddings, stage-2 CMAttn width '
          f'{s2["cmattn_width"]} ({s2["cmattn_heads"]} heads), input {args.img_size}')
    options = []
    if summary['rank'] != 5:
        options.append(f'model.backbone.adapter.rank={summary["rank"]}')
    if summary['num_classes'] != 9:
        options.append(f'model.decode_head.num_classes={summary["num_classes"]}')
    if summary['config']:
        print(f'config: {summary["config"]}')
    else:
        print('config: configs/hsam/hsam_vit-b_synapse_10pct.py (512) or '
              'hsam_vit-l_synapse_full.py (224) '
              f'with model.backbone.arch={enc["name"] or "the widths above"}, img_size '
              f'{args.img_size} and model.decode_head.attention_heads={s2["cmattn_heads"]}')
    if options:
        print('with --cfg-options ' + ' '.join(options))


if __name__ == '__main__':
    main()
