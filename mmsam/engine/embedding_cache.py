"""On-disk cache of a frozen image encoder's features, keyed by image, so that epochs after the
first skip the encoder (the most expensive part of a SAM with a frozen ViT).

Layout: ``<root>/<BackboneType>-<digest>/`` holds one ``<sha1 of the image key>.pt`` per
image and a ``meta.json`` saying what the digest covers. The digest changes, and a new,
empty folder is used, whenever the backbone config, the data preprocessor config, the
pixel-changing part of the pipeline or the encoder's actual weights change. Entries are
written atomically (temporary file, then rename), so an interrupted run never leaves a
half-written entry that a later run would trust.
"""
import hashlib
import json
import os
import os.path as osp
import tempfile

import torch

from mmsam.utils.io import atomic_write_text

META_FILE = 'meta.json'
ENTRY_SUFFIX = '.pt'
# Entry format; bump when what an entry holds changes, so old folders are not reused.
FORMAT_VERSION = 1


def _plain(obj):
    """A JSON-able, run-independent description of a config value (ConfigDict, tuple, type)."""
    if hasattr(obj, 'to_dict'):
        obj = obj.to_dict()
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, type) or callable(obj):
        # Classes and functions named by where they live, not by their (run-dependent) id.
        return f'{getattr(obj, "__module__", "?")}.{getattr(obj, "__qualname__", repr(obj))}'
    return repr(obj)


def _tensor_bytes(tensor):
    """The raw bytes of a tensor of any dtype (bfloat16 and bool included), on the CPU."""
    flat = tensor.detach().to('cpu').contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b''


def weights_digest(module):
    """sha256 over a module's ``state_dict``: every tensor's name, dtype, shape and bytes, in
    sorted key order.

    It identifies the weights actually in use, whatever put them there: the backbone's
    ``checkpoint`` file, a runner's ``load_from``/resume, or random initialisation.

    Args:
        module (nn.Module): e.g. the image encoder.

    Returns:
        str: hex digest.
    """
    sha = hashlib.sha256()
    state = module.state_dict()
    for name in sorted(state):
        value = state[name]
        if not torch.is_tensor(value):
            sha.update(f'{name}:{_plain(value)}\n'.encode())
            continue
        sha.update(f'{name}:{value.dtype}:{tuple(value.shape)}\n'.encode())
        sha.update(_tensor_bytes(value))
    return sha.hexdigest()


def _atomic_torch_save(obj, path):
    """``torch.save`` to a temporary file in the target folder, then an atomic rename."""
    fd, tmp = tempfile.mkstemp(dir=osp.dirname(osp.abspath(path)), suffix='.tmp')
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


class EmbeddingCache:
    """Computes a frozen encoder's features once per image and reads them back afterwards.

    Called as ``cache(backbone, inputs, data_samples)`` in place of ``backbone(inputs)`` (see
    ``SAMSegmentor.extract_feat``). Each sample's entry is keyed by its ``img_path`` (absolute),
    the file's size and ``mtime_ns`` (a rewritten image is a new key), its ``slice_index`` when
    the metainfo has one (slices of one volume file) and the autocast state. Misses run through
    the backbone together, once, under ``torch.no_grad()``; every output tensor is stored per
    sample on the CPU (float32 for float types of up to 32 bits, so values are exact) with its
    original dtype, which it is given back on reading.

    With ``verify_inputs`` (default) an entry also records a digest of the sample's
    preprocessed input pixels, and a hit whose pixels differ is treated as a miss and
    rewritten. This makes the cache safe where the key cannot see a change (padding that depends
    on the batch, a random transform the pipeline check did not know); hashing the input costs
    far less than the encoder.

    The cache does not check that the encoder is frozen or the pipeline deterministic: that is
    :class:`EmbeddingCacheHook`'s decision. Build it with :meth:`for_backbone`, which puts it in
    a folder named after a digest of everything that changes the features.

    Args:
        cache_dir (str): folder of the entries (created).
        verify_inputs (bool): check the input pixels of hits, see above.

    Attributes:
        hits (int), misses (int): samples read from / computed into the cache so far.
    """

    def __init__(self, cache_dir, verify_inputs=True):
        self.cache_dir = osp.abspath(cache_dir)
        self.verify_inputs = verify_inputs
        os.makedirs(self.cache_dir, exist_ok=True)
        self.hits = 0
        self.misses = 0

    @classmethod
    def for_backbone(cls, work_dir, backbone, backbone_cfg, preprocessor_cfg, pipeline_cfg=None,
                     root=None, verify_inputs=True):
        """A cache in ``<root>/<BackboneType>-<digest>/``, writing ``meta.json`` there.

        The digest (sha256, first 16 hex digits) covers:

        - ``backbone_cfg``: architecture, image size, output indices, adapter...;
        - ``preprocessor_cfg``: normalisation, channel order, padding and size change the
          pixels the encoder sees;
        - ``pipeline_cfg``: the pixel-changing transforms (e.g. ``Resize``), optional;
        - :func:`weights_digest` of ``backbone``: the weights in use, so a different
          ``checkpoint`` file, ``load_from`` or resumed run gets its own folder even when the
          configs are equal.

        Args:
            work_dir (str): the run's work dir; ``root`` defaults to
                ``<work_dir>/embedding_cache``.
            backbone (nn.Module): the (frozen) image encoder, with its final weights.
            backbone_cfg (dict): its config.
            preprocessor_cfg (dict | None): the segmentor's ``data_preprocessor`` config.
            pipeline_cfg (list[dict], optional): the pixel-changing transforms' configs.
            root (str, optional): folder of the cache folders.
            verify_inputs (bool): see the class docstring.

        Returns:
            EmbeddingCache
        """
        meta = dict(
            format_version=FORMAT_VERSION,
            backbone_type=type(backbone).__name__,
            backbone_cfg=_plain(backbone_cfg),
            data_preprocessor_cfg=_plain(preprocessor_cfg),
            pipeline_cfg=_plain(pipeline_cfg),
            weights_sha256=weights_digest(backbone),
        )
        text = json.dumps(meta, sort_keys=True, indent=1)
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        root = root if root is not None else osp.join(work_dir, 'embedding_cache')
        cache = cls(osp.join(root, f'{type(backbone).__name__}-{digest}'),
                    verify_inputs=verify_inputs)
        meta_path = osp.join(cache.cache_dir, META_FILE)
        if not osp.isfile(meta_path):
            atomic_write_text(meta_path, text + '\n')
        return cache

    @staticmethod
    def entry_key(data_sample):
        """The key of a data sample's entry (a JSON string).

        Args:
            data_sample (SegDataSample): with ``img_path`` in its metainfo.

        Returns:
            str
        """
        meta = data_sample.metainfo
        if meta.get('img_path') is None:
            raise KeyError("EmbeddingCache: a data sample has no 'img_path' in its metainfo, "
                           'so its features cannot be keyed; pack img_path (PackSegInputs '
                           'meta_keys) or remove EmbeddingCacheHook from the config')
        path = osp.abspath(str(meta['img_path']))
        try:
            stat = os.stat(path)
        except OSError as err:
            raise FileNotFoundError(f'EmbeddingCache: cannot stat {path} (the img_path of a '
                                    f'data sample): {err}') from err
        autocast = (torch.get_autocast_dtype('cuda') if torch.is_autocast_enabled('cuda') else
                    torch.get_autocast_dtype('cpu') if torch.is_autocast_enabled('cpu') else None)
        key = dict(img_path=path, size=stat.st_size, mtime_ns=stat.st_mtime_ns,
                   slice_index=meta.get('slice_index'), autocast=str(autocast))
        return json.dumps(key, sort_keys=True)

    def entry_path(self, key):
        """File of the entry with ``key``."""
        return osp.join(self.cache_dir, hashlib.sha1(key.encode()).hexdigest() + ENTRY_SUFFIX)

    @staticmethod
    def _input_digest(image):
        return hashlib.blake2b(_tensor_bytes(image), digest_size=16).hexdigest() + \
            f':{image.dtype}:{tuple(image.shape)}'

    def _load(self, path, key, input_digest):
        """The stored features of one sample, or None when absent, stale or unreadable."""
        if not osp.isfile(path):
            return None
        try:
            entry = torch.load(path, map_location='cpu', weights_only=True)
        except Exception:  # e.g. a file from an incompatible torch: recompute and overwrite
            return None
        if entry.get('key') != key:
            return None
        if input_digest is not None and entry.get('input_digest') != input_digest:
            return None
        return [t.to(getattr(torch, d.split('.')[-1]))
                for t, d in zip(entry['feats'], entry['dtypes'])]

    def _store(self, path, key, input_digest, feats):
        stored = []
        for t in feats:
            t = t.detach()
            if t.is_floating_point() and t.element_size() <= 4:
                t = t.float()  # exact for float16/bfloat16/float32
            stored.append(t.to('cpu').clone())  # own storage: not the whole batch's
        _atomic_torch_save(dict(key=key, input_digest=input_digest, feats=stored,
                                dtypes=[str(t.dtype) for t in feats]), path)

    def __call__(self, backbone, inputs, data_samples):
        """``backbone(inputs)``, computed only for the samples not in the cache.

        Args:
            backbone (nn.Module): the frozen image encoder; returns a tuple of (B, C, h, w).
            inputs (Tensor): (B, 3, H, W) preprocessed images.
            data_samples (list[SegDataSample]): B samples with ``img_path`` metainfo.

        Returns:
            tuple[Tensor]: what ``backbone(inputs)`` returns, in batch order, on
            ``inputs.device``, each tensor in the dtype the backbone gave it.
        """
        if len(data_samples) != inputs.shape[0]:
            raise ValueError(f'EmbeddingCache: {inputs.shape[0]} images but '
                             f'{len(data_samples)} data samples')
        keys = [self.entry_key(s) for s in data_samples]
        digests = [self._input_digest(img) if self.verify_inputs else None for img in inputs]
        loaded = [self._load(self.entry_path(k), k, d) for k, d in zip(keys, digests)]
        misses = [i for i, feats in enumerate(loaded) if feats is None]
        self.hits += len(keys) - len(misses)
        self.misses += len(misses)

        computed = None
        if misses:
            with torch.no_grad():
                computed = backbone(inputs[misses])
            if not isinstance(computed, (tuple, list)):
                raise TypeError(f'EmbeddingCache: the backbone returned {type(computed)}; '
                                'it must return a tuple of tensors')
            for row, i in enumerate(misses):
                self._store(self.entry_path(keys[i]), keys[i], digests[i],
                            [t[row] for t in computed])
            if len(misses) == len(keys):
                return tuple(computed)

        hits = [i for i in range(len(keys)) if loaded[i] is not None]
        num_outputs = len(computed) if computed is not None else len(loaded[hits[0]])
        outputs = []
        for j in range(num_outputs):
            first = computed[j][0] if computed is not None else loaded[hits[0]][j]
            out = torch.empty((len(keys), *first.shape), dtype=first.dtype,
                              device=inputs.device)
            if computed is not None:
                out[misses] = computed[j].to(out.dtype)
            out[hits] = torch.stack([loaded[i][j] for i in hits]).to(out.device)
            outputs.append(out)
        return tuple(outputs)

    def __repr__(self):
        return (f'{type(self).__name__}({self.cache_dir!r}, hits={self.hits}, '
                f'misses={self.misses})')
