"""Convert a HuggingFace SamModel checkpoint (SAM, MedSAM-HF, SeqSAM, SAM MCL) to mmsam.

    python tools/model_converters/hf_sam2mmsam.py SOURCE OUT [--recurrent-input-order zh]
        [--overwrite]

SOURCE is a ``save_pretrained`` folder (``config.json`` + ``model.safetensors`` or
``pytorch_model.bin``, sharded or not) or one ``.safetensors`` / ``.bin`` file:
``facebook/sam-vit-base``, ``wanglab/medsam-vit-base``, or a model the official SeqSAM code
(BenjaminTowle/SeqSAM, ``scripts/run.py``) saved: ``SeqSam`` (``sam.*`` + the recurrent module
``cell.conv_o.*`` / ``cell.conv_h.*``) or ``SamBaseline`` (``sam.*``: SAM MCL, MedSAM). The
weights are read without unpickling anything but tensors (safetensors through the
``safetensors`` package). Every key is used or dropped with the reason printed; a key or shape
that does not fit stops the conversion with its name. Widths come from the tensors (and the
decoder's heads and LayerNorm eps from config.json). The output is written to a temporary name
and renamed; use it with the printed config (tools/test.py's checkpoint, ``load_from``).
"""
import argparse
import os.path as osp

from mmsam.models.converters import run_conversion, save_converted
from mmsam.models.converters.hf_sam import convert_hf_sam

# What the paper-table configs set; other values are printed as --cfg-options to add.
CONFIG_WIDTHS = dict(embed_dim=768, depth=12, img_size=1024, transformer_dim=256,
                     decoder_num_heads=8, two_way_layer_norm_eps=1e-6)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('source', help='HF save_pretrained folder, .safetensors or .bin file')
    parser.add_argument('out', help='output mmsam checkpoint (.pth)')
    parser.add_argument('--recurrent-input-order', default='zh', choices=('zh', 'hz'),
                        help="SeqSAM's cell: 'zh' keeps the official cat([Z, H]) weights (the "
                        "Table 1 configs); 'hz' swaps the input halves for a head with "
                        "recurrent_input_order='hz'")
    parser.add_argument('--overwrite', action='store_true')
    args = parser.parse_args(argv)
    state, summary = run_conversion(args.out, args.overwrite, convert_hf_sam,
                                    args.source, args.recurrent_input_order)
    for line in summary['notes']:
        print(line)
    print(f'{summary["source_keys"]} keys in {args.source}: {summary["used_keys"]} used, '
          f'{summary["source_keys"] - summary["used_keys"]} dropped (reasons above)')
    enc, dec = summary['encoder'], summary['decoder']
    meta = dict(converted_from=osp.basename(osp.normpath(args.source)),
                converter='hf_sam2mmsam.py', kind=summary['kind'],
                two_way_layer_norm_eps=summary['two_way_layer_norm_eps'],
                recurrent_input_order=summary['recurrent_input_order'])
    save_converted(state, args.out, {k: v for k, v in meta.items() if v is not None})
    print(f'wrote {args.out}: {len(state)} tensors; {summary["kind"]}: encoder '
          f'{enc["name"] or "custom"} (width {enc["embed_dim"]}, depth {enc["depth"]}, global '
          f'blocks {enc["global_attn_indexes"]}), input {summary["img_size"]}, decoder width '
          f'{dec["transformer_dim"]} ({summary["decoder_num_heads"]} heads, two-way LayerNorm '
          f'eps {summary["two_way_layer_norm_eps"]:g}), {dec["num_mask_tokens"]} mask tokens')
    options = []
    if enc['name'] != 'vit_b':
        options.append(f'model.backbone.arch="{enc["name"]}"' if enc['name'] else
                       'model.backbone.arch=<the widths above>')
    if summary['img_size'] != CONFIG_WIDTHS['img_size']:
        options.append('model.backbone.img_size={0} model.decode_head.prompt_encoder.img_size='
                       '{0} model.data_preprocessor.size="({0},{0})"'.format(summary['img_size']))
    if dec['transformer_dim'] != CONFIG_WIDTHS['transformer_dim']:
        options.append(
            f'model.decode_head.prompt_encoder.embed_dim={dec["transformer_dim"]} '
            f'model.decode_head.mask_decoder.transformer_dim={dec["transformer_dim"]} '
            f'model.decode_head.mask_decoder.transformer_mlp_dim={dec["transformer_mlp_dim"]} '
            f'model.decode_head.mask_decoder.iou_head_hidden_dim={dec["iou_head_hidden_dim"]}')
    if summary['decoder_num_heads'] != CONFIG_WIDTHS['decoder_num_heads']:
        options.append('model.decode_head.mask_decoder.transformer_num_heads='
                       f'{summary["decoder_num_heads"]}')
    if summary['two_way_layer_norm_eps'] != CONFIG_WIDTHS['two_way_layer_norm_eps']:
        options.append('model.decode_head.mask_decoder.two_way_layer_norm_eps='
                       f'{summary["two_way_layer_norm_eps"]:g}')
    if summary['recurrent_input_order'] == 'hz':
        options.append("model.decode_head.recurrent_input_order='hz'")
    if summary['configs']:
        print('config: ' + ' or '.join(summary['configs']))
    else:
        print('config: a SAM / MedSAM in the HF layout, not a trained SeqSAM model: the '
              'converted file is a starting point (load_from) for configs/seqsam/*, '
              'configs/sam_mcl/*, configs/medsam/medsam_vit-b_lidc.py, whose SeqSAM recurrent '
              'module starts untrained')
    if options:
        print('with --cfg-options ' + ' '.join(options))


if __name__ == '__main__':
    main()
