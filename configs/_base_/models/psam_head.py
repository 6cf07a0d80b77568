# Probabilistic SAM's head (pSAM): a prior p(z | x) and a posterior q(z | x, y) over a latent z
# that an MLP adds to the box-prompt tokens of SAM's single-mask decoder; loss Dice + BCE +
# beta * KL(q || p); M prior samples at test time, one encoder pass. Applied to a box-prompted
# SAM model config with `model = dict(decode_head={{_base_.psam_head}})`.
psam_head = dict(
    type='PSAMHead',
    latent_dim=6,  # the public pSAM code's latent size
    net_input='image',  # prior/posterior read the preprocessed image ('embedding': SAM's)
    net_channels=(32, 64, 128),  # conv block widths of the prior and posterior nets
    net_input_size=None,  # resize the nets' input to this square size first (None: keep)
    log_std_range=(-5.0, 2.0),  # clamp of the nets' log-std
    modulate_dense=False,  # True: z also shifts the dense (no-mask) prompt
    beta=10.0,  # weight of KL(q || p), as the public pSAM code
    kl_warmup_iters=0,  # linear warm-up of beta over training iterations (0: none)
    num_hypotheses=16,  # default M at test time
    loss_decode=[dict(type='MaskDiceLoss', loss_weight=1.0),
                 dict(type='MaskBCELoss', loss_weight=1.0)],
)
