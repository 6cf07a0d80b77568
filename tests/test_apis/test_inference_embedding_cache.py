"""InferenceEmbeddingCache: a new cache object on the same folder serves the encoder's exact
features without running it; other pixels, other weights and damaged entries are computed."""
import os

import numpy as np
import torch

from conftest import SAM_MCL_RANDOM_CONFIG
from mmsam.apis import InteractiveSession, init_model
from mmsam.apis.inference_embedding_cache import InferenceEmbeddingCache, attach_embedding_cache


def counted_model(seed=0):
    torch.manual_seed(seed)
    model = init_model(str(SAM_MCL_RANDOM_CONFIG))
    model.calls = []
    model.backbone.register_forward_hook(lambda *_: model.calls.append(1))
    return model


def entries(folder):
    return sorted(n for n in os.listdir(folder) if n.endswith('.pt'))


def test_hits_are_exact_and_skip_the_encoder(tmp_path):
    model = counted_model()
    inputs = torch.rand(2, 3, 128, 128) * 255
    direct = model.backbone(inputs)
    model.calls.clear()
    cold = InferenceEmbeddingCache.for_model(str(tmp_path), model)
    feats = cold(model.backbone, inputs)
    assert (cold.misses, cold.hits, len(model.calls)) == (2, 0, 1)
    warm = InferenceEmbeddingCache.for_model(str(tmp_path), model)
    again = warm(model.backbone, inputs)
    assert (warm.misses, warm.hits, len(model.calls)) == (0, 2, 1)
    for a, b, c in zip(direct, feats, again):
        assert torch.equal(a, b) and torch.equal(a, c)  # float32 storage: exact
    assert len(entries(warm.cache_dir)) == 2 and not any(
        n.startswith('.') or 'tmp' in n for n in os.listdir(warm.cache_dir))

    # one changed pixel: a new key, computed (the other image still hits)
    changed = inputs.clone()
    changed[1, 0, 0, 0] += 1
    warm(model.backbone, changed)
    assert (warm.misses, warm.hits, len(model.calls)) == (1, 3, 2)

    # a damaged entry is recomputed, never served
    victim = os.path.join(warm.cache_dir, entries(warm.cache_dir)[0])
    with open(victim, 'wb') as f:
        f.write(b'broken')
    fixed = InferenceEmbeddingCache.for_model(str(tmp_path), model)(model.backbone, inputs)
    assert len(model.calls) == 3
    for a, b in zip(direct, fixed):  # recomputed alone: batch-size rounding only
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_other_weights_use_another_folder(tmp_path):
    a, b = counted_model(0), counted_model(1)
    cache_a = InferenceEmbeddingCache.for_model(str(tmp_path), a)
    cache_b = InferenceEmbeddingCache.for_model(str(tmp_path), b)
    assert cache_a.cache_dir != cache_b.cache_dir
    assert InferenceEmbeddingCache.for_model(str(tmp_path), a).cache_dir == cache_a.cache_dir


def test_sessions_and_the_segmentor_share_it(tmp_path):
    model = counted_model()
    image = np.random.default_rng(0).random((48, 40)).astype(np.float32)
    cache = attach_embedding_cache(model, str(tmp_path))
    assert model.embedding_cache is cache
    first = InteractiveSession(model, image, embedding_cache=cache).predict(box=[5, 6, 30, 40])
    second = InteractiveSession(model, image, embedding_cache=cache).predict(box=[5, 6, 30, 40])
    assert len(model.calls) == 1 and np.array_equal(first.logits, second.logits)
    assert attach_embedding_cache(model, None) is None
