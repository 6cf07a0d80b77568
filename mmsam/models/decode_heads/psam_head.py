"""Probabilistic SAM: a latent Gaussian variable that shifts SAM's box-prompt embeddings."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmsam.models.losses.kl_divergence_loss import KLDivergenceLoss, diagonal_gaussian_kl
from mmsam.models.utils.latent_gaussian_encoder import LatentGaussianEncoder
from mmsam.registry import MODELS
from .box_prompt_head import BoxPromptHead
from .sam_decode_head import repeat_high_res

NET_INPUTS = ('image', 'embedding')
TRAIN_TARGETS = ('prompted', 'any_annotation')
LOSS_RESOLUTIONS = ('logits', 'input')


@MODELS.register_module()
class PSAMHead(BoxPromptHead):
    """Probabilistic SAM (pSAM): a conditional VAE over SAM's single-mask, box-prompted decoder.

    A prior net p(z | x) and a posterior net q(z | x, y) (:class:`LatentGaussianEncoder`:
    small conv encoders ending in the mean and clamped log-std of a diagonal Gaussian) read
    either the preprocessed image (``net_input='image'``, as the public pSAM code, latent size
    6) or the frozen image embedding (``'embedding'``); the posterior also reads the
    annotation y as an extra channel. A sample z is mapped by an MLP (L -> C -> C) to the
    prompt width and added to both box-corner tokens (and, with ``modulate_dense``, to every
    position of the dense prompt). The mask is token 0 of SAM's decoder, as in MedSAM.

    Training: y is one annotation per step (``train_target``): the one the box was drawn
    from (``'prompted'``, as the public code: the pipeline draws it each time the image is
    loaded, ``BoxPromptFromAnnotation(readers='any', empty='centre')`` for the public recipe:
    any of the K readers, the central box for an empty one), or any reader's, drawn
    independently of the box (``'any_annotation'``, empty masks included), z ~ q(z | x, y)
    (reparameterised), loss = ``loss_decode`` (Dice + BCE against y) + beta_t * KL(q || p),
    with beta_t = beta * min(1, t / kl_warmup_iters) over the training iterations t (counted
    in a buffer saved with the checkpoint, so a resumed run continues the warm-up). The loss
    dict also logs the raw ``kl`` and ``kl_beta`` (beta_t).

    Inference: M samples z ~ p(z | x) give M hypotheses; the image is encoded once and the
    decoder runs once on a batch of B * M (embedding, prompt) pairs.

    The MLP's last layer starts at zero (by default), so before training every z gives the
    deterministic box-prompted mask (:class:`MedSAMHead` with the same weights), the model
    without the latent variable.

    With ``net_input='image'`` the head needs the preprocessed image as well as the features:
    :class:`MultiHypothesisSegmentor` passes ``feats + (image,)`` when ``reads_image`` is True,
    so the embedding is ``inputs[-2]`` and the image ``inputs[-1]``; otherwise the embedding is
    ``inputs[-1]``.

    Args:
        prompt_encoder (dict), mask_decoder (dict): see :class:`SAMDecodeHead`.
        loss_decode (list[dict]): called as ``loss(logits, target)`` with (B, h, w) tensors,
            e.g. ``MaskDiceLoss`` and ``MaskBCELoss``.
        latent_dim (int): L >= 1 (pSAM: 6).
        net_input (str): ``'image'`` or ``'embedding'``.
        net_channels (tuple[int]): block widths of the prior and posterior nets.
        net_convs_per_block (int), net_downsample (bool): their 3x3 convolutions per block and
            whether blocks after the first start with a 2x2 average pool (see
            :class:`LatentGaussianEncoder`; the public code's nets: ``net_channels=(32, 64)``,
            1 conv per block, no pooling).
        net_input_size (int, optional): resize the nets' input (image or embedding) and the
            annotation to this square size first (e.g. 128 for LIDC crops upsampled to 1024);
            None keeps it.
        image_channels (int): channels of the preprocessed image (``net_input='image'``).
        log_std_range (tuple[float, float]): clamp of the nets' log-std.
        modulate_dense (bool): also add the projected z to the dense prompt.
        beta (float): weight of the KL term (pSAM: 10).
        kl_warmup_iters (int): linear warm-up of beta over this many training iterations (0:
            none).
        kl_free_bits (float): nats per latent dimension below which the KL gives no gradient
            (see :class:`KLDivergenceLoss`; 0: the plain KL, as the public code).
        train_target (str): ``'prompted'`` or ``'any_annotation'`` (see above).
        zero_init_latent_mlp (bool): start the z -> prompt MLP's last layer at zero (see
            below); False keeps PyTorch's random init, so z moves the mask from the start.
        loss_resolution (str): where the mask losses are computed: ``'logits'`` (SAM's
            low-resolution logits, 1/4 of the input, against the nearest-resized target) or
            ``'input'`` (the logits upsampled bilinearly to the network input, as the public
            code computes them at 1024).
        num_hypotheses (int): default M at test time.
        **kwargs: :class:`BoxPromptHead` arguments.
    """

    def __init__(self, prompt_encoder, mask_decoder, loss_decode, latent_dim=6,
                 net_input='image', net_channels=(32, 64, 128), net_input_size=None,
                 image_channels=3, log_std_range=(-5., 2.), modulate_dense=False, beta=10.0,
                 kl_warmup_iters=0, kl_free_bits=0.0, train_target='prompted',
                 zero_init_latent_mlp=True, net_convs_per_block=2, net_downsample=True,
                 loss_resolution='logits', num_hypotheses=16, **kwargs):
        if loss_resolution not in LOSS_RESOLUTIONS:
            raise ValueError(f'PSAMHead: loss_resolution must be one of {LOSS_RESOLUTIONS}, got '
                             f'{loss_resolution!r}')
        if train_target not in TRAIN_TARGETS:
            raise ValueError(f'PSAMHead: train_target must be one of {TRAIN_TARGETS}, got '
                             f'{train_target!r}')
        if isinstance(latent_dim, bool) or int(latent_dim) != latent_dim or latent_dim < 1:
            raise ValueError(f'PSAMHead: latent_dim must be an integer >= 1, got {latent_dim!r}'
                             ' (the model without the latent variable is MedSAMHead)')
        if net_input not in NET_INPUTS:
            raise ValueError(f'PSAMHead: net_input must be one of {NET_INPUTS}, got '
                             f'{net_input!r}')
        if beta < 0 or kl_warmup_iters < 0:
            raise ValueError(f'PSAMHead: beta and kl_warmup_iters must be >= 0, got beta={beta}'
                             f', kl_warmup_iters={kl_warmup_iters}')
        if net_input_size is not None and int(net_input_size) < 1:
            raise ValueError(f'PSAMHead: net_input_size must be None or >= 1, got '
                             f'{net_input_size}')
        super().__init__(prompt_encoder, mask_decoder, loss_decode,
                         num_hypotheses=num_hypotheses, **kwargs)
        self.latent_dim, self.net_input = int(latent_dim), net_input
        self.train_target, self.loss_resolution = train_target, loss_resolution
        self.net_input_size = None if net_input_size is None else int(net_input_size)
        self.modulate_dense, self.beta = bool(modulate_dense), float(beta)
        self.kl_warmup_iters, self.image_channels = int(kl_warmup_iters), int(image_channels)
        self.loss_kl = KLDivergenceLoss(free_bits=kl_free_bits)  # weight 1: beta_t multiplies it
        # training iterations seen, for the KL warm-up; a buffer, so checkpoints keep it
        self.register_buffer('kl_iter', torch.zeros((), dtype=torch.long))
        width = self.prompt_encoder.embed_dim
        in_channels = image_channels if net_input == 'image' else width
        net = dict(channels=net_channels, log_std_range=log_std_range,
                   convs_per_block=net_convs_per_block, downsample=net_downsample)
        self.prior_net = LatentGaussianEncoder(in_channels, self.latent_dim, **net)
        self.posterior_net = LatentGaussianEncoder(in_channels + 1, self.latent_dim, **net)
        self.latent_to_prompt = nn.Sequential(nn.Linear(self.latent_dim, width), nn.ReLU(),
                                              nn.Linear(width, width))
        if zero_init_latent_mlp:  # before training every z gives the deterministic mask
            nn.init.zeros_(self.latent_to_prompt[-1].weight)
            nn.init.zeros_(self.latent_to_prompt[-1].bias)

    @property
    def reads_image(self):
        """Whether the head needs the preprocessed image after the features."""
        return self.net_input == 'image'

    def current_beta(self):
        """beta_t = beta * min(1, t / kl_warmup_iters) at training iteration t."""
        if self.kl_warmup_iters == 0:
            return self.beta
        return self.beta * min(1.0, int(self.kl_iter) / self.kl_warmup_iters)

    def split_inputs(self, inputs):
        """(embedding, image or None) from the head's inputs (see the class docstring)."""
        features, image = self.split_features(inputs)
        return features[-1], image

    def split_features(self, inputs):
        """(encoder features, image or None) from the head's inputs (see the class
        docstring)."""
        if not self.reads_image:
            return inputs, None
        image = inputs[-1]
        if len(inputs) < 2 or image.dim() != 4 or image.shape[1] != self.image_channels:
            raise ValueError('PSAMHead with net_input="image" expects (..., image embedding, '
                             'preprocessed image) as inputs, as MultiHypothesisSegmentor passes '
                             'them; got shapes ' + str([tuple(x.shape) for x in inputs]))
        return inputs[:-1], image

    def net_features(self, embedding, image):
        """The prior/posterior nets' input: the image or the embedding, (B, C', H', W')."""
        x = image if self.net_input == 'image' else embedding
        if self.net_input_size is not None and x.shape[-2:] != (self.net_input_size,) * 2:
            x = F.interpolate(x, size=(self.net_input_size,) * 2, mode='bilinear',
                              align_corners=False)
        return x

    def training_targets(self, batch_data_samples):
        """Each sample's training target y at the network input size: (B, 1, H, W) in {0, 1}.

        ``train_target='prompted'``: the annotation the box was drawn from (``gt_sem_seg``);
        ``'any_annotation'``: one of the sample's annotations drawn uniformly at every step
        (empty ones included), whatever the box came from.
        """
        field = 'gt_sem_seg' if self.train_target == 'prompted' else 'gt_annotations'
        for sample in batch_data_samples:
            if field not in sample:
                raise KeyError(
                    f'PSAMHead trains its posterior q(z | image, annotation) on an annotation '
                    f'(train_target={self.train_target!r}), but the sample of '
                    f'{sample.metainfo.get("img_path")} has no {field}: add '
                    'BoxPromptFromAnnotation and PackMultiAnnotatorInputs to the training '
                    'pipeline')
            self._check_unpadded(sample)
        if self.train_target == 'prompted':
            return (self._stack_batch_gt(batch_data_samples) == 1).float()
        targets = []
        for sample in batch_data_samples:
            annotations = sample.gt_annotations.data
            chosen = annotations[int(torch.randint(len(annotations), ()))].float()
            targets.append(F.interpolate(chosen[None, None], size=sample.img_shape[:2],
                                         mode='nearest')[0])
        return torch.stack(targets)

    def mask_losses(self, logits, target):
        """``loss_decode`` at ``loss_resolution``.

        Args:
            logits (Tensor): (B, 1, h, w) logits.
            target (Tensor): (B, 1, H, W) target at the network input size.

        Returns:
            dict[str, Tensor]: one entry per loss.
        """
        if self.loss_resolution == 'input':
            logits = F.interpolate(logits, size=target.shape[-2:], mode='bilinear',
                                   align_corners=False)
        else:
            target = F.interpolate(target, size=logits.shape[-2:], mode='nearest')
        return self.sum_losses(logits[:, 0], target[:, 0])

    def decode(self, embedding, sparse, dense, z=None, high_res=None):
        """SAM's single-mask output with the prompts shifted by the projected latent.

        Args:
            embedding (Tensor): (N, C, h, w) image embeddings.
            sparse (Tensor): (N, T, C) prompt tokens.
            dense (Tensor): (N, C, h, w) dense prompts.
            z (Tensor, optional): (N, L) latents; None decodes the prompts unchanged.
            high_res (list[Tensor], optional): SAM 2's high-resolution features of the N
                items (see :meth:`image_features`).

        Returns:
            Tensor: (N, 1, 4h, 4w) logits.
        """
        if z is not None:
            shift = self.latent_to_prompt(z)
            sparse = sparse + shift[:, None]
            if self.modulate_dense:
                dense = dense + shift[:, :, None, None]
        masks, _ = self.decode_masks(embedding, self.prompt_encoder.get_dense_pe(), sparse,
                                     dense, high_res)
        return masks[:, :1]

    def forward(self, inputs, batch_data_samples, num_hypotheses=None, z=None):
        """M hypotheses from prior samples, one batched decoder call.

        Args:
            inputs (tuple[Tensor]): features, the (B, C, h, w) image embedding last (or
                second to last, followed by the (B, 3, H, W) image: see ``reads_image``).
            batch_data_samples (list[SegDataSample]): with box prompts.
            num_hypotheses (int, optional): M; default ``self.num_hypotheses``.
            z (Tensor, optional): (B, M, L) latents to decode instead of prior samples.

        Returns:
            Tensor: (B, M, 4h, 4w) logits.
        """
        num = self.num_hypotheses if num_hypotheses is None else num_hypotheses
        if z is not None:
            if z.dim() != 3:
                raise ValueError(f'PSAMHead: z must be (B, M, L), got {tuple(z.shape)}')
            num = z.shape[1]
        if isinstance(num, bool) or int(num) != num or num < 1:
            raise ValueError(f'PSAMHead: the number of hypotheses M must be an integer >= 1, '
                             f'got {num!r}')
        num = int(num)
        features, image = self.split_features(inputs)
        embedding, high_res = self.image_features(features)
        sparse, dense = self.box_prompt_embeddings(batch_data_samples, embedding.device)
        batch = embedding.shape[0]
        if z is None:
            mu, log_std = self.prior_net(self.net_features(embedding, image))
            z = mu[:, None] + log_std.exp()[:, None] * torch.randn(
                batch, num, self.latent_dim, dtype=mu.dtype, device=mu.device)
        elif z.shape[::2] != (batch, self.latent_dim):
            raise ValueError(f'PSAMHead: z must be (B={batch}, M, L={self.latent_dim}), got '
                             f'{tuple(z.shape)}')
        # SAM 2's high-resolution features, repeated like the embedding (SAM: none)
        extra = {} if high_res is None else dict(high_res=repeat_high_res(high_res, num))
        logits = self.decode(embedding.repeat_interleave(num, 0),
                             sparse.repeat_interleave(num, 0),
                             dense.repeat_interleave(num, 0), z.reshape(batch * num, -1),
                             **extra)
        return logits.reshape(batch, num, *logits.shape[-2:])

    def predict_hypotheses(self, inputs, batch_data_samples, num_hypotheses=None):
        """(B, M, h, w) logits for any M (default ``num_hypotheses``)."""
        return self.forward(inputs, batch_data_samples, num_hypotheses)

    def loss(self, inputs, batch_data_samples, train_cfg):
        """Dice + BCE of the posterior-sampled mask, plus beta_t * KL(q || p).

        Returns:
            dict[str, Tensor]: ``loss_dice``, ``loss_bce`` (``loss_decode``'s names),
            ``loss_kl`` (already times beta_t), and the logged ``kl`` and ``kl_beta``.
        """
        features, image = self.split_features(inputs)
        embedding, high_res = self.image_features(features)
        sparse, dense = self.box_prompt_embeddings(batch_data_samples, embedding.device)
        x = self.net_features(embedding, image)
        target = self.training_targets(batch_data_samples).to(x.device)
        # area: an embedding-sized grid keeps how much of each cell is annotated
        annotation = F.interpolate(target, size=x.shape[-2:], mode='area')
        mu_p, log_std_p = self.prior_net(x)
        mu_q, log_std_q = self.posterior_net(torch.cat([x, annotation], dim=1))
        z = mu_q + log_std_q.exp() * torch.randn_like(mu_q)
        extra = {} if high_res is None else dict(high_res=high_res)  # SAM 2 only
        losses = self.mask_losses(self.decode(embedding, sparse, dense, z, **extra), target)
        beta = self.current_beta()
        losses[self.loss_kl.loss_name] = beta * self.loss_kl(mu_q, log_std_q, mu_p, log_std_p)
        kl = diagonal_gaussian_kl(mu_q, log_std_q, mu_p, log_std_p).sum(-1).mean()
        losses['kl'] = kl.detach()  # without free bits
        losses['kl_beta'] = kl.new_tensor(beta)
        if self.training:
            self.kl_iter += 1
        return losses
