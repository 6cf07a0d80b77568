"""PSAMHead: the deterministic limit, latent sampling, the variational loss, KL warm-up, errors."""
import pytest
import torch
from mmengine.structures import PixelData

from conftest import TINY_IMG
from conftest import tiny_box_prompt_segmentor_cfg as segmentor_cfg
from mmsam.registry import MODELS
from test_box_prompt_heads import WIDTH, build_head, head_cfg, sample

BOXES = [[3., 4., 20., 25.], [10., 0., 31., 12.]]


def psam(checkpoint=None, **kwargs):
    kwargs.setdefault('net_input', 'embedding')
    kwargs.setdefault('net_channels', (8, 16))
    head = MODELS.build(head_cfg('MedSAMHead', checkpoint, **kwargs) | dict(type='PSAMHead'))
    head.init_weights()
    return head


def embedding_and_image(batch=2):
    torch.manual_seed(0)
    return torch.randn(batch, WIDTH, 8, 8), torch.randn(batch, 3, TINY_IMG, TINY_IMG)


def inputs_for(head, emb, img):
    return (emb, img) if head.reads_image else (emb,)


def training_samples():
    gt = torch.zeros(TINY_IMG, TINY_IMG)
    gt[10:30, 12:40] = 1
    return [sample([6., 5., 20., 15.], gt=gt, ori=TINY_IMG),
            sample([2., 3., 30., 31.], gt=gt.flip(0), ori=TINY_IMG)]


def randomise_latent_mlp(head):
    torch.manual_seed(1)
    with torch.no_grad():
        head.latent_to_prompt[-1].weight.normal_(0, 1.0)


@pytest.mark.parametrize('net_input', ['image', 'embedding'])
def test_deterministic_limit_equals_medsam(tiny_sam_checkpoint, net_input):
    medsam = build_head('MedSAMHead', tiny_sam_checkpoint)
    on = psam(tiny_sam_checkpoint, net_input=net_input).eval()  # zero-initialised z -> prompt
    assert on.reads_image == (net_input == 'image')
    emb, img = embedding_and_image()
    samples = [sample(b) for b in BOXES]
    with torch.no_grad():
        ref = medsam((emb,), samples)
        untrained = on.predict_hypotheses(inputs_for(on, emb, img), samples, 4)
    assert untrained.shape == (2, 4, 32, 32)
    torch.testing.assert_close(untrained, ref.expand(-1, 4, -1, -1), atol=1e-5, rtol=1e-4)


def test_different_latents_give_different_masks_and_sample_order_is_kept(tiny_sam_checkpoint):
    head = psam(tiny_sam_checkpoint).eval()
    randomise_latent_mlp(head)
    emb, _ = embedding_and_image()
    samples = [sample(b) for b in BOXES]
    z = torch.randn(2, 3, 6)
    z[:, 2] = z[:, 0]
    with torch.no_grad():
        out = head((emb,), samples, z=z)
        for i in range(2):  # the batched call decodes (image i, z[i, m]) pairs
            one = head((emb[i:i + 1],), samples[i:i + 1], z=z[i:i + 1, 1:2])
            torch.testing.assert_close(out[i:i + 1, 1:2], one, atol=1e-5, rtol=1e-4)
        sampled = head.predict_hypotheses((emb,), samples, 5)
    assert (out[:, 0] - out[:, 1]).abs().max() > 1e-2
    torch.testing.assert_close(out[:, 0], out[:, 2])
    assert ((sampled[:, 0] > 0) != (sampled[:, 1] > 0)).any()


@pytest.mark.parametrize('modulate_dense', [False, True])
def test_latent_shifts_the_box_tokens_and_optionally_the_dense_prompt(tiny_sam,
                                                                      tiny_sam_checkpoint,
                                                                      modulate_dense):
    """segment-anything's own prompt encoder and mask decoder, with the projected z added to
    both box-corner tokens (and, with ``modulate_dense``, to every position of the dense
    prompt), give the head's mask."""
    emb, _ = embedding_and_image(1)
    torch.manual_seed(2)
    z = torch.randn(1, 1, 6)
    head = psam(tiny_sam_checkpoint, modulate_dense=modulate_dense).eval()
    randomise_latent_mlp(head)
    with torch.no_grad():
        ours = head((emb,), [sample(BOXES[0])], z=z)
        shift = head.latent_to_prompt(z[0])  # (1, C)
        # segment-anything scales boxes to the input frame: 32 px -> 64 px
        sparse, dense = tiny_sam.prompt_encoder(points=None, masks=None,
                                                boxes=torch.tensor([BOXES[0]]) * 2)
        dense = dense + shift[:, :, None, None] if modulate_dense else dense
        ref, _ = tiny_sam.mask_decoder(emb, tiny_sam.prompt_encoder.get_dense_pe(),
                                       sparse + shift[:, None], dense, multimask_output=False)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('net_input', ['image', 'embedding'])
def test_m_hypotheses_cost_one_encoder_pass(net_input):
    cfg = segmentor_cfg('MedSAMHead', num_hypotheses=7, return_logits=True)
    cfg['decode_head'].update(type='PSAMHead', net_input=net_input, net_channels=(8, 16))
    model = MODELS.build(cfg).eval()
    randomise_latent_mlp(model.decode_head)
    encoder_calls, decoder_calls, net_inputs = [], [], []
    model.backbone.register_forward_hook(lambda *args: encoder_calls.append(1))
    model.decode_head.mask_decoder.register_forward_hook(lambda *a: decoder_calls.append(1))
    model.decode_head.prior_net.register_forward_hook(
        lambda mod, args, out: net_inputs.append(args[0].shape))
    decode_inputs = []
    original = model.decode_head.mask_decoder.predict
    model.decode_head.mask_decoder.predict = lambda e, *a: decode_inputs.append(
        e.shape) or original(e, *a)
    data = [sample(b, ori=40) for b in BOXES]
    for s in data:
        s.gt_annotations = PixelData(data=torch.zeros(4, 40, 40, dtype=torch.uint8))
    with torch.no_grad():
        out = model.predict(torch.randn(2, 3, TINY_IMG, TINY_IMG), data)
    assert len(encoder_calls) == 1 and decode_inputs == [(14, WIDTH, 8, 8)]
    expected = (2, 3, TINY_IMG, TINY_IMG) if net_input == 'image' else (2, WIDTH, 8, 8)
    assert net_inputs == [expected]
    for s in out:
        assert s.pred_hypotheses.data.shape == (7, 40, 40)
        logits = s.hypothesis_logits.data
        assert (logits[0] - logits[1]).abs().max() > 1e-3


@pytest.mark.parametrize('net_input', ['image', 'embedding'])
def test_loss_is_dice_bce_plus_beta_kl_and_trains_every_part(net_input, monkeypatch):
    cfg = segmentor_cfg('MedSAMHead')
    cfg['decode_head'].update(type='PSAMHead', net_input=net_input, net_channels=(8, 16),
                              beta=3.0)
    model = MODELS.build(cfg).train()
    head = model.decode_head
    randomise_latent_mlp(head)
    captured = {}
    original = head.posterior_net.forward

    def spy(x):
        captured['x'] = x
        captured['q'] = original(x)
        return captured['q']

    monkeypatch.setattr(head.posterior_net, 'forward', spy)
    torch.manual_seed(0)
    losses = model.loss(torch.randn(2, 3, TINY_IMG, TINY_IMG), training_samples())
    assert set(losses) == {'decode.loss_dice', 'decode.loss_bce', 'decode.loss_kl',
                           'decode.kl', 'decode.kl_beta'}
    torch.testing.assert_close(losses['decode.loss_kl'], 3.0 * losses['decode.kl'])
    assert losses['decode.kl_beta'].item() == 3.0 and losses['decode.kl'] > 0
    # the posterior reads the prompted annotation as its last channel
    x = captured['x']
    assert x.shape[1] == (4 if net_input == 'image' else WIDTH + 1)
    if net_input == 'image':
        torch.testing.assert_close(x[0, -1], training_samples()[0].gt_sem_seg.data[0].float())
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    for part in (head.prior_net, head.posterior_net, head.latent_to_prompt, head.mask_decoder):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    assert head.kl_iter.item() == 1


def test_kl_warmup_is_linear_and_survives_a_checkpoint():
    head = psam(beta=10.0, kl_warmup_iters=4).train()
    emb, _ = embedding_and_image()
    betas = [head.loss((emb,), training_samples(), None)['kl_beta'].item() for _ in range(6)]
    assert betas == pytest.approx([0., 2.5, 5., 7.5, 10., 10.])
    state = {k: v.clone() for k, v in head.state_dict().items()}
    assert state['kl_iter'].item() == 6
    resumed = psam(beta=10.0, kl_warmup_iters=4)
    state['kl_iter'].fill_(2)
    resumed.load_state_dict(state)
    assert resumed.current_beta() == 5.0
    head.eval()
    head.loss((emb,), training_samples(), None)  # validation losses do not count
    assert head.kl_iter.item() == 6
    assert psam(beta=10.0).current_beta() == 10.0


def test_bad_configuration_and_data_are_clear_errors():
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match='latent_dim'):
            psam(latent_dim=bad)
    with pytest.raises(ValueError, match='net_input'):
        psam(net_input='pixels')
    with pytest.raises(ValueError, match='num_hypotheses'):
        psam(num_hypotheses=0)
    head = psam().eval()
    emb, img = embedding_and_image(1)
    with pytest.raises(ValueError, match='>= 1'):
        head.predict_hypotheses((emb,), [sample(BOXES[0])], 0)
    with pytest.raises(KeyError, match='gt_sem_seg'):
        head.loss((emb,), [sample(BOXES[0])], None)
    image_head = psam(net_input='image')
    with pytest.raises(ValueError, match='MultiHypothesisSegmentor'):
        image_head.predict_hypotheses((emb,), [sample(BOXES[0])], 2)
    cfg = segmentor_cfg('MedSAMHead', num_hypotheses=0)
    cfg['decode_head'].update(type='PSAMHead')
    with pytest.raises(ValueError, match='num_hypotheses'):
        MODELS.build(cfg)


def test_any_annotation_target_draws_among_all_readers(monkeypatch):
    head = psam(train_target='any_annotation')
    annotations = torch.zeros(3, 32, 32, dtype=torch.uint8)
    annotations[1, 4:12, 4:12] = 1  # reader 2 drew a square; readers 1 and 3 nothing
    data = [sample([4., 4., 11., 11.], annotations=annotations)]
    draws = iter([1, 0])
    monkeypatch.setattr(torch, 'randint', lambda high, size: torch.tensor(next(draws)))
    square = head.training_targets(data)
    assert square.shape == (1, 1, TINY_IMG, TINY_IMG)  # at the input size (32 -> 64 px)
    assert square.sum() == 16 * 16
    assert head.training_targets(data).sum() == 0  # an empty reader is a target too
    with pytest.raises(ValueError, match='train_target'):
        psam(train_target='prompt')


def test_random_init_of_the_latent_mlp_makes_z_matter_from_the_start():
    emb, _ = embedding_and_image(1)
    z = torch.randn(1, 2, 6)
    with torch.no_grad():
        zero = psam().eval()((emb,), [sample(BOXES[0])], z=z)
        random = psam(zero_init_latent_mlp=False).eval()((emb,), [sample(BOXES[0])], z=z)
    torch.testing.assert_close(zero[:, 0], zero[:, 1])
    assert (random[:, 0] - random[:, 1]).abs().max() > 1e-4


def test_kl_and_z_come_from_the_nets_own_outputs_by_reparameterisation(monkeypatch):
    from torch.distributions import Independent, Normal, kl_divergence
    head = psam(beta=4.0, zero_init_latent_mlp=False).train()
    seen = {}

    def spy_net(name, forward):
        def wrapped(x):
            seen[name] = forward(x)
            return seen[name]
        return wrapped

    def spy_decode(embedding, sparse, dense, z):
        seen['z'] = z
        return decode(embedding, sparse, dense, z)

    for name in ('prior_net', 'posterior_net'):
        monkeypatch.setattr(getattr(head, name), 'forward',
                            spy_net(name, getattr(head, name).forward))
    decode = head.decode
    monkeypatch.setattr(head, 'decode', spy_decode)
    emb, _ = embedding_and_image()
    torch.manual_seed(5)
    losses = head.loss((emb,), training_samples(), None)
    mu_p, log_std_p = seen['prior_net']
    mu_q, log_std_q = seen['posterior_net']
    torch.manual_seed(5)  # the only draw of the step: the posterior sample's noise
    eps = torch.randn_like(mu_q)
    torch.testing.assert_close(seen['z'], mu_q + log_std_q.exp() * eps)
    q = Independent(Normal(mu_q, log_std_q.exp()), 1)
    p = Independent(Normal(mu_p, log_std_p.exp()), 1)
    kl = kl_divergence(q, p).mean()  # the public code's KL: summed over L, mean over batch
    torch.testing.assert_close(losses['kl'], kl.detach())
    torch.testing.assert_close(losses['loss_kl'], 4.0 * kl)


def test_public_recipe_options_net_size_and_loss_at_the_input_resolution(monkeypatch):
    # The public nets: conv 3 -> 32, conv 32 -> 64 at full resolution, global average, two
    # linear heads (64 -> L): 20,172 (prior) and 20,460 (posterior, +1 input channel) weights.
    head = psam(net_input='image', net_channels=(32, 64), net_convs_per_block=1,
                net_downsample=False, log_std_range=(-5., 5.), loss_resolution='input',
                zero_init_latent_mlp=False).train()
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert (count(head.prior_net), count(head.posterior_net)) == (20172, 20460)
    assert not any(isinstance(m, torch.nn.AvgPool2d) for m in head.prior_net.modules())
    emb, img = embedding_and_image()
    samples = training_samples()
    captured = {}
    decode = head.decode

    def spy(*args):
        captured['logits'] = decode(*args)
        return captured['logits']

    monkeypatch.setattr(head, 'decode', spy)
    losses = head.loss((emb, img), samples, None)
    logits = torch.nn.functional.interpolate(captured['logits'], size=(TINY_IMG, TINY_IMG),
                                             mode='bilinear', align_corners=False)[:, 0]
    target = torch.stack([s.gt_sem_seg.data[0].float() for s in samples])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    torch.testing.assert_close(losses['loss_bce'], bce)
    with pytest.raises(ValueError, match='loss_resolution'):
        psam(loss_resolution='full')
