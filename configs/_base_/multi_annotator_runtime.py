# The runtime of multi-annotator (multi-hypothesis) configs: default_runtime.py with pictures of
# every annotator, hypothesis and the consensus (tools/test.py --show-dir, val during training).
_base_ = ['./default_runtime.py']
visualizer = dict(type='HypothesisVisualizer')
# With --show-dir every test image gets its picture (interval 1); drawing is off otherwise.
default_hooks = dict(visualization=dict(type='HypothesisVisualizationHook', interval=1))
