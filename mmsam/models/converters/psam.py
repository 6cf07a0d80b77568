"""Probabilistic SAM (tbwa233/Probabilistic-SAM): ``ProbabilisticSAM.state_dict()`` -> mmsam.

The official file (``torch.save(model.state_dict())``, main.py) holds ``sam.*`` (segment-
anything's layout), ``prior_net.*`` and ``posterior_net.*`` (``PosteriorEncoder``: conv 3x3 ->
ReLU -> conv 3x3 -> ReLU -> global average -> ``fc_mu`` / ``fc_log_sigma``), ``fcomb.decoder.*``
(the same module as ``sam.mask_decoder``, saved a second time) and ``fcomb.z_projector.{0,2}``
(z -> prompt width). In mmsam (``PSAMHead``): the nets are ``LatentGaussianEncoder`` (the two
linear heads are one 1 x 1 convolution, mean rows first) and the projector is
``latent_to_prompt``.
"""
import contextlib
import os
import os.path as osp
from typing import Dict, Iterator, List, Tuple

import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from torch import Tensor

from .official_check import build_model, register_case, sam_widths
from .sam_layout import SAM_TO_MMSAM, check_sam_part, decoder_arch, encoder_arch
from .source_keys import (ConversionError, SourceKeys, load_into_model_strictly,
                          read_weight_file)

PSAM_CONFIG = 'configs/psam/psam_vit-b_lidc_official.py'


def convert_psam(path: str) -> Tuple[dict, dict, List[str]]:
    """Convert an official Probabilistic SAM file into an mmsam ``PSAMHead`` model state dict.

    Args:
        path (str): the ``.pth`` that ``torch.save(ProbabilisticSAM.state_dict())`` wrote.

    Returns:
        tuple[dict, dict, list[str]]: the state dict, a summary (widths read from the file,
        ``latent_dim``, ``net_channels``, ``config``) and the report lines.
    """
    src = SourceKeys(read_weight_file(path), path)
    if not src.keys('sam.') or not src.keys('prior_net.'):
        raise ConversionError(f'{path} has no sam.* and prior_net.* keys: it is not a '
                              'ProbabilisticSAM state dict')
    state, parts = {}, {}
    for sam_prefix, ours in SAM_TO_MMSAM.items():
        parts[sam_prefix] = src.take_prefix(f'sam.{sam_prefix}')
        check_sam_part(parts[sam_prefix], sam_prefix[:-1], path, f'sam.{sam_prefix}')
        state.update({ours + k: v for k, v in parts[sam_prefix].items()})
    decoder = parts['mask_decoder.']
    for key in src.keys('fcomb.decoder.'):
        name = key[len('fcomb.decoder.'):]
        if name not in decoder or not torch.equal(src.state[key], decoder[name]):
            raise ConversionError(f'{path}: {key!r} differs from sam.mask_decoder.{name} (or '
                                  'has no counterpart); the official SAMFcomb shares one '
                                  'decoder, so the two copies must be equal')
    src.drop('fcomb.decoder.', 'the same module as sam.mask_decoder (SAMFcomb shares it), '
             'checked equal')
    channels = None
    for net in ('prior_net', 'posterior_net'):
        net_state, net_channels = _gaussian_net(src, net, path)
        if channels not in (None, net_channels):
            raise ConversionError(f'{path}: prior and posterior nets have different widths')
        channels = net_channels
        state.update({f'decode_head.{net}.{k}': v for k, v in net_state.items()})
    width = decoder['mask_tokens.weight'].shape[1]
    latent = state['decode_head.prior_net.to_gaussian.weight'].shape[0] // 2
    for i in (0, 2):
        out_dim = width
        state[f'decode_head.latent_to_prompt.{i}.weight'] = src.take(
            f'fcomb.z_projector.{i}.weight', (out_dim, latent if i == 0 else width))
        state[f'decode_head.latent_to_prompt.{i}.bias'] = src.take(
            f'fcomb.z_projector.{i}.bias', (out_dim,))
    # PSAMHead's count of training iterations (for its KL warm-up): a fresh model's 0
    state['decode_head.kl_iter'] = torch.zeros((), dtype=torch.long)
    report = src.finish()
    enc = encoder_arch(parts['image_encoder.'], path)
    summary = dict(encoder=enc, decoder=decoder_arch(decoder, path), latent_dim=latent,
                   net_channels=channels, img_size=enc['grid'] * enc['patch_size'],
                   config=PSAM_CONFIG)
    return state, summary, report


def _gaussian_net(src, net, path):
    """One ``PosteriorEncoder`` as ``LatentGaussianEncoder`` weights; also its conv widths."""
    state, channels = {}, []
    convs = sorted({int(k.split('.')[2]) for k in src.keys(f'{net}.encoder.')})
    if convs != [0, 2]:
        raise ConversionError(f'{path}: {net}.encoder has layers {convs}; the official '
                              'PosteriorEncoder has convolutions at 0 and 2')
    for i in convs:
        weight = src.take(f'{net}.encoder.{i}.weight')
        state[f'encoder.{i}.weight'] = weight
        state[f'encoder.{i}.bias'] = src.take(f'{net}.encoder.{i}.bias', weight.shape[:1])
        channels.append(weight.shape[0])
    mu_w = src.take(f'{net}.fc_mu.weight')
    latent = mu_w.shape[0]
    shape = (latent, channels[-1])
    mu_w = src.take(f'{net}.fc_mu.weight', shape)
    sigma_w = src.take(f'{net}.fc_log_sigma.weight', shape)
    state['to_gaussian.weight'] = torch.cat([mu_w, sigma_w])[:, :, None, None]
    state['to_gaussian.bias'] = torch.cat([src.take(f'{net}.fc_mu.bias', (latent,)),
                                           src.take(f'{net}.fc_log_sigma.bias', (latent,))])
    return state, tuple(channels)


@contextlib.contextmanager
def standard_normal_draws(eps: Tensor) -> Iterator[None]:
    """Make ``torch.randn`` / ``torch.randn_like`` return the official run's draws.

    The official outputs used ``Normal.rsample`` draws that the fixture stores (``eps``); the
    head draws its own with ``torch.randn(_like)``. Within this block those calls return the
    stored draw (reshaped to the requested size, which must have as many elements).
    """
    randn, randn_like = torch.randn, torch.randn_like

    def fixed(*size, **kwargs):
        size = size[0] if len(size) == 1 and isinstance(size[0], (tuple, list)) else size
        return eps.reshape(size).to(kwargs.get('dtype') or eps.dtype)

    torch.randn = fixed
    torch.randn_like = lambda x, **kwargs: eps.reshape(x.shape).to(x.dtype)
    try:
        yield
    finally:
        torch.randn, torch.randn_like = randn, randn_like


@register_case('psam', PSAM_CONFIG)
def run_psam_fixture(fixture_dir: str, meta: dict, cfg: Config,
                     inputs: Dict[str, Tensor], attn_impl: str) -> Tuple[dict, List[str]]:
    """The Probabilistic SAM fixture: mmsam's outputs under the official keys.

    Returns:
        tuple[dict, list[str]]: outputs and notes.
    """
    from mmsam.datasets.transforms import BoxPromptFromAnnotation
    arch = meta['arch']
    model_cfg = cfg.model
    sam_widths(model_cfg, arch, attn_impl)
    model_cfg.decode_head.latent_dim = arch['latent_dim']
    model = build_model(model_cfg)
    files = [f for f in sorted(os.listdir(fixture_dir)) if f.endswith('.pth')]
    state, summary, report = convert_psam(osp.join(fixture_dir, files[0]))
    load_into_model_strictly(model, state, fixture_dir)
    model.eval()
    notes = list(report)

    image = inputs['image'].float()  # (1, 3, S, S) in [0, 1]
    mask = inputs['mask'].float()  # (1, 1, S, S)
    size = tuple(image.shape[-2:])
    boxes = [BoxPromptFromAnnotation.box_of(m[0].numpy() > 0.5) for m in mask]
    samples = [SegDataSample(metainfo=dict(img_shape=size, ori_shape=size, pad_shape=size,
                                           prompt_box=box.tolist())) for box in boxes]
    for sample, m in zip(samples, mask):
        sample.gt_sem_seg = PixelData(data=(m > 0.5).long())
    data = model.data_preprocessor(dict(inputs=[x * 255.0 for x in image], data_samples=samples),
                                   False)
    batch, samples = data['inputs'], data['data_samples']
    head = model.decode_head
    head_in = model.head_inputs(batch, samples)
    embedding, net_image = head.split_inputs(head_in)
    x = head.net_features(embedding, net_image)
    target = head.training_targets(samples)
    annotation = F.interpolate(target, size=x.shape[-2:], mode='area')
    mu_p, log_p = head.prior_net(x)
    mu_q, log_q = head.posterior_net(torch.cat([x, annotation], dim=1))
    out = dict(image_embedding=embedding, box=torch.stack([torch.as_tensor(b) for b in boxes]),
               prior_mu=mu_p, prior_log_sigma=log_p, prior_sigma=log_p.exp(),
               posterior_mu=mu_q, posterior_log_sigma=log_q, posterior_sigma=log_q.exp())
    out['decoded_logits_z'] = head.forward(head_in, samples, z=inputs['z'][:, None])[:, :1]
    with standard_normal_draws(inputs['eps_prior']):
        out['eval_logits_prior_sample'] = head.forward(head_in, samples, num_hypotheses=1)
    z_post = mu_q + log_q.exp() * inputs['eps_posterior']
    out['train_logits_posterior_sample'] = head.forward(head_in, samples, z=z_post[:, None])
    with standard_normal_draws(inputs['eps_posterior']):
        losses = head.loss(head_in, samples, None)
    recon = sum(v for k, v in losses.items() if k in ('loss_dice', 'loss_bce'))
    out.update(loss_recon=recon, loss_kl=losses['kl'], loss=recon + losses['loss_kl'])
    notes.append('box: BoxPromptFromAnnotation.box_of on the mask at the model size (as the '
                 'official generate_boxes); eps draws of the official run fed to the head')
    return out, notes
