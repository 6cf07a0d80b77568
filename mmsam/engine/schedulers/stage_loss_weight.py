"""H-SAM's stage-1 loss weight schedule (lambda_w), shared by its hook and the H-SAM checks."""


def stage_loss_weight(epoch: float, start: float = 0.4, decay: float = 0.01) -> float:
    """``w(e) = 1 - (1 - start) ** ((1 - decay) ** e)``: ``start`` at epoch 0, decaying to 0.

    Args:
        epoch (float): e, passes over the training set so far.
        start (float): w at epoch 0, in [0, 1].
        decay (float): decay coefficient, in [0, 1).

    Returns:
        float: w(e).

    Raises:
        ValueError: ``start`` or ``decay`` out of range.
    """
    if not 0 <= start <= 1:
        raise ValueError(f'stage loss weight start must be in [0, 1], got {start}')
    if not 0 <= decay < 1:
        raise ValueError(f'stage loss weight decay must be in [0, 1), got {decay}')
    return 1 - (1 - start) ** ((1 - decay) ** epoch)
