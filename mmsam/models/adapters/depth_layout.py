"""The (b, t, q) batch layout shared by the depth adapters.

Every per-slice tensor is (B * T, ...) with item ``b * T + t``, and every decoder tensor is
(B * T * Q, ...) with item ``(b * T + t) * Q + q``; T is fixed when an adapter is built.
"""


def num_groups(n, num_frames, num_queries, owner):
    """The number of cases B in a batch of N = B * T * Q items ordered (b, t, q).

    Args:
        n (int): N, the batch size the adapter sees.
        num_frames (int): T, fixed when the adapter is built.
        num_queries (int): Q, items per slice (1 in the encoder).
        owner (str): the calling component, for the message.

    Returns:
        int: B.
    """
    group = num_frames * num_queries
    if n % group:
        raise ValueError(
            f'{owner}: a batch of {n} items is not divisible by num_frames ({num_frames}) x '
            f'num_queries ({num_queries}); items must be ordered (b, t, q) with T = num_frames, '
            'which is fixed at build time (training patches and test windows share it)')
    return n // group


def spatial_size(x, hw, owner):
    """The (h, w) grid of an (N, h, w, D) map or of (N, L, D) tokens laid out on ``hw``.

    Args:
        x (Tensor): (N, h, w, D) or (N, L, D).
        hw (tuple[int, int], optional): the grid of (N, L, D) input, L = h * w.
        owner (str): the calling component, for the message.

    Returns:
        tuple[int, int]: (h, w).
    """
    if x.dim() == 4:
        if hw is not None and tuple(hw) != tuple(x.shape[1:3]):
            raise ValueError(f'{owner}: hw={tuple(hw)} does not match the input grid '
                             f'{tuple(x.shape[1:3])}')
        return tuple(x.shape[1:3])
    if x.dim() != 3 or hw is None:
        raise ValueError(f'{owner} expects (N, h, w, D) input, or (N, L, D) with hw=(h, w); '
                         f'got shape {tuple(x.shape)} with hw={hw}')
    h, w = hw
    if h * w != x.shape[1]:
        raise ValueError(f'{owner}: hw={tuple(hw)} gives {h * w} positions, the input has '
                         f'L={x.shape[1]}')
    return h, w
