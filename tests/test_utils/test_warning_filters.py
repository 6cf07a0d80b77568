"""Known third-party warnings are dropped by exact message; others still show."""
import logging
import warnings

from mmsam.utils.warning_filters import KnownLogWarningFilter, filter_known_warnings


def test_known_python_warnings_dropped_others_kept():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        filter_known_warnings()
        warnings.warn('``build_loss`` would be deprecated soon, please use X', UserWarning)
        warnings.warn('Default ``avg_non_ignore`` is False, if you would like ...', UserWarning)
        warnings.warn('something the user must see', UserWarning)
    assert [str(w.message) for w in caught] == ['something the user must see']


def record(message, level=logging.WARNING):
    return logging.LogRecord('mmengine', level, __file__, 1, message, None, None)


def test_known_log_warnings_dropped_others_kept():
    keep = KnownLogWarningFilter().filter
    assert not keep(record('The prefix is not set in metric class VolumeDiceHD95Metric.'))
    assert not keep(record('"FileClient" will be deprecated in future. Please use io ...'))
    assert keep(record('The prefix is not set in metric class X.', logging.INFO))
    assert keep(record('"FileClient" failed to read a.pth'))


def test_runner_logger_drops_known_warnings(tmp_path):
    """MMSAMRunner.build_logger attaches the filter: the log file keeps only the real warning."""
    from mmengine.logging import MMLogger

    from mmsam.engine.runner import MMSAMRunner
    runner = MMSAMRunner.__new__(MMSAMRunner)
    runner._experiment_name = 'warnfilter'
    runner._log_dir = str(tmp_path)
    runner._timestamp = 'x'
    logger = MMSAMRunner.build_logger(runner, log_file=str(tmp_path / 'x.log'))
    logger.warning('The prefix is not set in metric class VolumeDiceHD95Metric.')
    logger.warning('a real problem')
    for handler in logger.handlers:
        handler.flush()
    text = (tmp_path / 'x.log').read_text()
    assert 'a real problem' in text and 'prefix is not set' not in text
    assert isinstance(logger, MMLogger)



def _assign_future_warnings(install_filters):
    """The FutureWarnings of mmseg 1.2.2's HungarianAssigner.assign (as MaskSAM's criterion
    calls it), with or without mmsam's filters installed."""
    import torch
    from mmengine.structures import InstanceData
    from mmseg.models.assigners import HungarianAssigner
    assigner = HungarianAssigner(match_costs=[dict(type='ClassificationCost', weight=1.0)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        if install_filters:
            filter_known_warnings()
        _, cols = assigner.assign(InstanceData(scores=torch.randn(3, 4)),
                                  InstanceData(labels=torch.tensor([0, 2])))
    assert sorted(cols.tolist()) == [0, 1]  # the matching still runs
    return [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]


def test_mmseg_autocast_future_warning_dropped_at_its_source_only():
    """mmseg's deprecated torch.cuda.amp.autocast spelling (in every MaskSAM training log) is
    dropped when mmseg's assigner raises it; the same message from elsewhere still shows."""
    message = '`torch.cuda.amp.autocast(args...)` is deprecated'
    assert any(message in m for m in _assign_future_warnings(False))  # there without filters
    assert _assign_future_warnings(True) == []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        filter_known_warnings()
        warnings.warn_explicit(message, FutureWarning, 'mine.py', 1, module='mmsam.mine')
    assert [str(w.message) for w in caught] == [message]
