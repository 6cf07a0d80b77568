"""Several encoder adapters injected one after another (e.g. LoRA + MaskSAM's depth blocks)."""
from mmsam.registry import MODELS


@MODELS.register_module()
class ComposeAdapters:
    """Runs each adapter's ``inject(vit)`` in order and returns all added parameter names.

    ``LoRA`` and ``DepthBlockAdapter`` compose in either order: the depth block adopts the
    block's ``attn`` (LoRA's or not), and LoRA replaces ``attn.qkv`` inside whatever block is
    there.

    Args:
        adapters (list[dict]): adapter configs (built from MODELS), each with ``inject``.
    """

    def __init__(self, adapters):
        if not adapters:
            raise ValueError('ComposeAdapters needs a non-empty list of adapter configs')
        self.adapters = [MODELS.build(a) if isinstance(a, dict) else a for a in adapters]

    def inject(self, vit):
        """Inject every adapter into ``vit``.

        Args:
            vit (nn.Module): a SAM ``ImageEncoderViT`` (or subclass).

        Returns:
            list[str]: the added parameter names, in injection order.
        """
        added = []
        for adapter in self.adapters:
            added += adapter.inject(vit)
        return added
