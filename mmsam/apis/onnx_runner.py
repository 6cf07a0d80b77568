"""Running an exported model (:mod:`mmsam.apis.onnx_export`) with onnxruntime on CPU.

:class:`OnnxSegmentor` looks, to :func:`inference_model`, :func:`inference_scan` and
``tools/infer.py``, like the PyTorch segmentor it was exported from: the same data
preprocessor (built from the exported config), the same ``predict`` (mmsam's own
``SAMSegmentor.predict`` / ``MultiHypothesisSegmentor.predict``, called on this object), so the
pre- and post-processing (resizing in and out, argmax, thresholds, the consensus vote) is one
code path for both backends; only the network runs in onnxruntime.
"""
import json
import os.path as osp
from types import SimpleNamespace
from typing import List, Optional

import numpy as np
import torch
from mmengine.config import Config
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.structures import SegDataSample
from torch import Tensor

from mmsam.models.decode_heads.box_prompt_head import BoxPromptHead, mean_probability_logit
from mmsam.models.segmentors import MultiHypothesisSegmentor, SAMSegmentor
from mmsam.registry import MODELS
from .onnx_export import CONFIG_FILE, DEPLOY_FILE, ENCODER_FILE, HEAD_FILE


class OnnxSegmentor:
    """An exported encoder + head behind the segmentor interface mmsam's inference uses.

    Args:
        onnx_dir (str): the export folder (``encoder.onnx``, ``head.onnx``, ``deploy.json``,
            ``config.py``).
        cfg (Config, optional): overrides the exported ``config.py``.
        num_threads (int, optional): onnxruntime intra-op threads.
    """

    def __init__(self, onnx_dir: str, cfg: Optional[Config] = None,
                 num_threads: Optional[int] = None) -> None:
        import onnxruntime as ort
        missing = [n for n in (ENCODER_FILE, HEAD_FILE, DEPLOY_FILE, CONFIG_FILE)
                   if not osp.isfile(osp.join(onnx_dir, n))]
        if missing:
            raise FileNotFoundError(f'{onnx_dir}: lacks {missing}; export the model with '
                                    'tools/deployment/pytorch2onnx.py CONFIG CKPT --out DIR')
        with open(osp.join(onnx_dir, DEPLOY_FILE)) as f:
            self.record = json.load(f)
        self.cfg = cfg if cfg is not None else Config.fromfile(osp.join(onnx_dir, CONFIG_FILE))
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = int(num_threads)
        providers = ['CPUExecutionProvider']
        self.encoder = ort.InferenceSession(osp.join(onnx_dir, ENCODER_FILE), options,
                                            providers=providers)
        self.head = ort.InferenceSession(osp.join(onnx_dir, HEAD_FILE), options,
                                         providers=providers)
        record = self.record
        self.kind = record['kind']
        self.num_classes, self.out_channels = record['num_classes'], record['out_channels']
        self.align_corners = record['align_corners']
        self.dataset_meta = record.get('dataset_meta')
        self.test_cfg = dict(self.cfg.model.get('test_cfg') or {})
        self.decode_head = SimpleNamespace(threshold=record['threshold'],
                                           num_classes=self.num_classes)
        self.backbone = SimpleNamespace(img_size=record['input_size'][0])
        self.data_preprocessor = MODELS.build(self.cfg.model.data_preprocessor)

    def _features(self, inputs):
        feats = self.encoder.run(None, {'image': inputs.detach().cpu().float().numpy()})
        return dict(zip(self.record['encoder_outputs'], feats))

    def _head(self, feeds):
        (logits, ) = self.head.run(['logits'], feeds)
        return torch.from_numpy(np.ascontiguousarray(logits))

    def encode_decode(self, inputs: Tensor, data_samples: List[SegDataSample]) -> Tensor:
        """Logits at the network input size: (B, C, S, S) (hypotheses: their mean's logit)."""
        if self.kind == 'hypotheses':
            return mean_probability_logit(self.predict_hypotheses(inputs, data_samples))
        return self._head(self._features(inputs))

    def predict_hypotheses(self, inputs: Tensor,
                           data_samples: List[SegDataSample]) -> Tensor:
        """Hypothesis logits (B, M, S, S) for the samples' box prompts."""
        feeds = self._features(inputs)
        # BoxPromptHead's own scaling of the boxes to the network input
        boxes = BoxPromptHead.prompt_boxes(self, data_samples, 'cpu')
        feeds['boxes'] = boxes.numpy().astype(np.float32)
        return self._head(feeds)

    # The exported head gives the hypotheses at the input size (S, S), which is what
    # MultiHypothesisSegmentor.write_hypotheses accepts as its "low-res" logits.
    low_res_hypotheses = predict_hypotheses
    write_hypotheses = MultiHypothesisSegmentor.write_hypotheses
    postprocess_result = BaseSegmentor.postprocess_result

    def predict(self, inputs: Tensor,
                data_samples: List[SegDataSample]) -> List[SegDataSample]:
        """As the exported segmentor's ``predict``: list of ``SegDataSample``."""
        if self.kind == 'hypotheses':
            return MultiHypothesisSegmentor.predict(self, inputs, data_samples)
        return SAMSegmentor.predict(self, inputs, data_samples)

    def test_step(self, data: dict) -> List[SegDataSample]:
        data = self.data_preprocessor(data, False)
        return self.predict(data['inputs'], data['data_samples'])

    def eval(self) -> 'OnnxSegmentor':
        return self
