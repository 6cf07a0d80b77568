from .bottleneck_adapter import BottleneckAdapter
from .compose_adapters import ComposeAdapters
from .dconv_adapter import DConvAdapter
from .depth_block_adapter import DepthAdaptedBlock, DepthBlockAdapter
from .dmlp_adapter import DMLPAdapter
from .hiera_depth_block_adapter import DepthAdaptedHieraBlock, HieraDepthBlockAdapter
from .lora import LoRA, LoRAQKVLinear
from .masksam_decoder_adapter import MaskSAMDecoderAdapter

__all__ = ['BottleneckAdapter', 'ComposeAdapters', 'DConvAdapter', 'DepthAdaptedBlock',
           'DepthAdaptedHieraBlock', 'DepthBlockAdapter', 'DMLPAdapter', 'HieraDepthBlockAdapter',
           'LoRA', 'LoRAQKVLinear', 'MaskSAMDecoderAdapter']
