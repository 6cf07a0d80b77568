"""On-disk cache of a frozen image encoder's features, keyed by image, so that epochs after the
first skip the encoder (the most expensive part of a SAM with a frozen ViT).

Layout: ``<root>/<BackboneType>-<digest>/`` holds one ``<sha1 of the image key>.pt`` per
image and a ``meta.json`` saying what the digest covers. The digest changes, and a new,
empty folder is used, whenever the backbone config, the data preprocessor config, the
pixel-changing part of the pipeline, the encoder's actual weights, the source code of the
encoder's modules, the storage dtype or the versions of mmsam, segment-anything and torch
change. Entries are written atomically (temporary file, fsync, rename), so an interrupted run
never leaves a half-written entry under an entry's name; an entry that still cannot be read
is recomputed, never served.

Storage: float16 by default (half of float32's disk and read time; SAM's neck output is
LayerNorm-ed, well inside float16's range, and a tensor that would overflow is kept in
float32), ``'bfloat16'`` or exact ``'float32'`` as options. Features computed in a batch
are rounded to the storage dtype too, so a run gives the same results whether the cache was
cold or warm (e.g. after a resume).
"""
import hashlib
import inspect
import json
import os
import os.path as osp
import sys

import torch

from mmsam.utils.disk import check_free_disk
from mmsam.utils.io import atomic_torch_save, atomic_write_text

META_FILE = 'meta.json'
ENTRY_SUFFIX = '.pt'
# Entry format; bump when what an entry holds changes, so old folders are not reused.
FORMAT_VERSION = 2
STORAGE_DTYPES = ('float16', 'bfloat16', 'float32')
DEFAULT_STORAGE_DTYPE = 'float16'
# Bytes of an entry besides its tensors (key, digest, zip records), for the disk check.
ENTRY_OVERHEAD = 4096


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


def _package_version(name):
    try:
        from importlib.metadata import PackageNotFoundError, version
        return version(name)
    except (ImportError, PackageNotFoundError):
        return None


def library_versions():
    """Versions of the libraries whose code computes the features.

    Returns:
        dict: ``mmsam``, ``segment_anything``, ``torch`` (None where not installed).
    """
    import mmsam
    return dict(mmsam=mmsam.__version__, segment_anything=_package_version('segment_anything'),
                torch=torch.__version__)


def code_digest(module):
    """sha256 over the source files of every module class a network is built from.

    A reused work dir then cannot serve features computed by older encoder code (a fixed
    attention, another adapter) even when the config and weights are unchanged.

    Args:
        module (nn.Module): e.g. the image encoder.

    Returns:
        str: hex digest (of the sorted ``module path: sha256 of its source file`` lines).
    """
    files = {}
    for sub in module.modules():
        cls = type(sub)
        if cls.__module__.startswith('torch.'):
            continue  # torch's own layers: covered by torch's version
        source = sys.modules.get(cls.__module__)
        try:
            path = inspect.getsourcefile(source) if source is not None else None
        except TypeError:  # a built-in module
            path = None
        if path is None or cls.__module__ in files:
            continue
        with open(path, 'rb') as f:
            files[cls.__module__] = hashlib.sha256(f.read()).hexdigest()
    text = '\n'.join(f'{name}:{sha}' for name, sha in sorted(files.items()))
    return hashlib.sha256(text.encode()).hexdigest()


class EmbeddingCache:
    """Computes a frozen encoder's features once per image and reads them back afterwards.

    Called as ``cache(backbone, inputs, data_samples)`` in place of ``backbone(inputs)`` (see
    ``SAMSegmentor.extract_feat``). Each sample's entry is keyed by its ``img_path`` (absolute),
    the file's size and ``mtime_ns`` (a rewritten image is a new key), its ``slice_index`` when
    the metainfo has one (slices of one volume file) and the autocast state. Misses run through
    the backbone together, once, under ``torch.no_grad()``; every floating output tensor is
    stored per sample on the CPU in ``storage_dtype`` (float32 is exact for float types of up
    to 32 bits) with its original dtype, which it is given back on reading. What a miss returns
    is rounded the same way, so results do not depend on whether an entry existed.

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
        storage_dtype (str): 'float16' (default), 'bfloat16' or 'float32'.
        expected_entries (int, optional): how many entries the run will write at most (e.g.
            the dataset's length); before the first entry is written the free disk space is
            checked for that many (minus those present).

    Attributes:
        hits (int), misses (int): samples read from / computed into the cache so far.
    """

    def __init__(self, cache_dir, verify_inputs=True, storage_dtype=DEFAULT_STORAGE_DTYPE,
                 expected_entries=None):
        if storage_dtype not in STORAGE_DTYPES:
            raise ValueError(f'EmbeddingCache: storage_dtype={storage_dtype!r} is not one of '
                             f'{STORAGE_DTYPES}')
        self.cache_dir = osp.abspath(cache_dir)
        self.verify_inputs = verify_inputs
        self.storage_dtype = storage_dtype
        self.expected_entries = expected_entries
        os.makedirs(self.cache_dir, exist_ok=True)
        self.hits = 0
        self.misses = 0
        self._space_checked = expected_entries is None

    @classmethod
    def for_backbone(cls, work_dir, backbone, backbone_cfg, preprocessor_cfg, pipeline_cfg=None,
                     root=None, verify_inputs=True, storage_dtype=DEFAULT_STORAGE_DTYPE,
                     expected_entries=None):
        """A cache in ``<root>/<BackboneType>-<digest>/``, writing ``meta.json`` there.

        The digest (sha256, first 16 hex digits) covers:

        - ``backbone_cfg``: architecture, image size, output indices, adapter...;
        - ``preprocessor_cfg``: normalisation, channel order, padding and size change the
          pixels the encoder sees;
        - ``pipeline_cfg``: the pixel-changing transforms (e.g. ``Resize``), optional;
        - :func:`weights_digest` of ``backbone``: the weights in use, so a different
          ``checkpoint`` file, ``load_from`` or resumed run gets its own folder even when the
          configs are equal;
        - :func:`code_digest` of ``backbone`` and :func:`library_versions`: the code that
          computes the features;
        - ``storage_dtype``.

        Args:
            work_dir (str): the run's work dir; ``root`` defaults to
                ``<work_dir>/embedding_cache``.
            backbone (nn.Module): the (frozen) image encoder, with its final weights.
            backbone_cfg (dict): its config.
            preprocessor_cfg (dict | None): the segmentor's ``data_preprocessor`` config.
            pipeline_cfg (list[dict], optional): the pixel-changing transforms' configs.
            root (str, optional): folder of the cache folders.
            verify_inputs (bool): see the class docstring.
            storage_dtype (str): see the class docstring.
            expected_entries (int, optional): see the class docstring.

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
            code_sha256=code_digest(backbone),
            versions=library_versions(),
            storage_dtype=storage_dtype,
        )
        text = json.dumps(meta, sort_keys=True, indent=1)
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        root = root if root is not None else osp.join(work_dir, 'embedding_cache')
        cache = cls(osp.join(root, f'{type(backbone).__name__}-{digest}'),
                    verify_inputs=verify_inputs, storage_dtype=storage_dtype,
                    expected_entries=expected_entries)
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
            if entry.get('key') != key:
                return None
            if input_digest is not None and entry.get('input_digest') != input_digest:
                return None
            return [t.to(getattr(torch, d.split('.')[-1]))
                    for t, d in zip(entry['feats'], entry['dtypes'])]
        except Exception:  # damaged, or from an incompatible torch: recompute and overwrite
            return None

    def _rounded(self, tensor):
        """``tensor`` as it is stored: (values, storage dtype) in its own dtype and device.

        float16/bfloat16 storage keeps float32 where the cast would overflow a finite value.
        """
        if not tensor.is_floating_point() or tensor.element_size() > 4:
            return tensor, tensor.dtype
        if self.storage_dtype == 'float32':
            return tensor, torch.float32
        dtype = getattr(torch, self.storage_dtype)
        stored = tensor.to(dtype)
        if not torch.equal(torch.isfinite(stored), torch.isfinite(tensor)):
            return tensor, torch.float32
        return stored.to(tensor.dtype), dtype

    def _check_space(self, per_entry):
        self._space_checked = True
        present = sum(n.endswith(ENTRY_SUFFIX) for n in os.listdir(self.cache_dir))
        to_write = max(0, self.expected_entries - present)
        check_free_disk(self.cache_dir, to_write * per_entry,
                        f'the embedding cache ({to_write} entries of about {per_entry} bytes, '
                        f'{self.storage_dtype})',
                        fix="point EmbeddingCacheHook(cache_dir=...) to another disk, store "
                        "in storage_dtype='float16' if it is float32, or remove the hook")

    def _store(self, path, key, input_digest, feats, dtypes):
        stored = [t.detach().to(d).to('cpu').clone()  # own storage: not the whole batch's
                  for t, d in zip(feats, dtypes)]
        atomic_torch_save(dict(key=key, input_digest=input_digest, feats=stored,
                               dtypes=[str(t.dtype) for t in feats]), path)

    def __call__(self, backbone, inputs, data_samples):
        """``backbone(inputs)``, computed only for the samples not in the cache.

        Args:
            backbone (nn.Module): the frozen image encoder; returns a tuple of (B, C, h, w).
            inputs (Tensor): (B, 3, H, W) preprocessed images.
            data_samples (list[SegDataSample]): B samples with ``img_path`` metainfo.

        Returns:
            tuple[Tensor]: what ``backbone(inputs)`` returns, in batch order, on
            ``inputs.device``, each tensor in the dtype the backbone gave it, rounded through
            the storage dtype.
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
            rounded = [self._rounded(t) for t in computed]
            computed = [r[0] for r in rounded]
            dtypes = [r[1] for r in rounded]
            if not self._space_checked:
                self._check_space(ENTRY_OVERHEAD + sum(
                    t[0].numel() * torch.empty((), dtype=d).element_size()
                    for t, d in zip(computed, dtypes)))
            for row, i in enumerate(misses):
                self._store(self.entry_path(keys[i]), keys[i], digests[i],
                            [t[row] for t in computed], dtypes)
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
