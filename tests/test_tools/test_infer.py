"""tools/infer.py: one grid picture per .npz sample or image file, clear errors."""
import cv2
import numpy as np
import pytest
from conftest import SAM_MCL_RANDOM_CONFIG as CONFIG
from conftest import expect_error, load_script

SPACING = 4  # HypothesisVisualizer's default gap between panels
NUM_HYPOTHESES = 3  # SAM-MCL's outputs


@pytest.fixture(scope='module')
def infer():
    return load_script('tools/infer.py')


def grid_width(num_panels, panel):
    return num_panels * panel + (num_panels - 1) * SPACING


def is_red(pixel_bgr):
    b, g, r = (int(c) for c in pixel_bgr)
    return r > 180 and g < 90 and b < 90


def write_sample(path, size=128, num_annotators=3):
    rng = np.random.default_rng(1)
    image = (0.3 + 0.05 * rng.random((size, size))).astype(np.float32)
    masks = np.zeros((num_annotators, size, size), np.uint8)
    for k in range(num_annotators):
        masks[k, 40 + 2 * k:90, 30:80 - 3 * k] = 1
    image[masks.any(0)] += 0.4
    np.savez_compressed(path, image=image, masks=masks)


def test_npz_sample_shows_every_annotator(infer, mcl_checkpoint, tmp_path, capsys):
    sample = tmp_path / 'case_a.npz'
    write_sample(sample)
    out_dir = tmp_path / 'out'
    written = infer.main([str(CONFIG), mcl_checkpoint, str(sample), '--out-dir', str(out_dir)])
    assert written == [str(out_dir / 'case_a.png')]
    assert str(out_dir / 'case_a.png') in capsys.readouterr().out
    grid = cv2.imread(written[0])
    # 128 px -> 256 px panels: image, 3 readers, 3 hypotheses, consensus.
    assert grid.shape[1] == grid_width(1 + 3 + NUM_HYPOTHESES + 1, 256)


def test_image_with_box(infer, mcl_checkpoint, tmp_path):
    # A gray, non-square PNG: 80 x 96 (H x W) -> x3 panels of 240 x 288.
    image = np.full((80, 96), 90, np.uint8)
    image[20:60, 30:70] = 200
    gray = tmp_path / 'gray.png'
    cv2.imwrite(str(gray), image)
    rgb = tmp_path / 'rgb.jpg'
    cv2.imwrite(str(rgb), np.repeat(image[..., None], 3, axis=-1))
    out_dir = tmp_path / 'out'
    box = (28, 18, 71, 61)
    written = infer.main([str(CONFIG), mcl_checkpoint, str(gray), str(rgb), '--out-dir',
                          str(out_dir), '--box', *map(str, box)])
    assert written == [str(out_dir / 'gray.png'), str(out_dir / 'rgb.png')]
    grid = cv2.imread(written[0])
    assert grid.shape[1] == grid_width(1 + NUM_HYPOTHESES + 1, 288)
    assert grid.shape[0] > 240
    # The box lies where --box puts it, in pixels of the image (scaled x3, pixel centres).
    top = grid.shape[0] - 240
    x0, y0, x1, y1 = (3 * v + 1 for v in box)
    mid_y = top + (y0 + y1) // 2
    assert is_red(grid[mid_y, x0]) and is_red(grid[mid_y, x1])
    assert not is_red(grid[mid_y, x0 + 12])
    assert cv2.imread(written[1]).shape == grid.shape


def test_box_overrides_the_npz_annotation_box(infer, mcl_checkpoint, tmp_path):
    sample = tmp_path / 's.npz'
    write_sample(sample, num_annotators=1)
    (path, ) = infer.main([str(CONFIG), mcl_checkpoint, str(sample), '--out-dir', str(tmp_path),
                           '--box', '5', '6', '10', '120'])
    grid = cv2.imread(path)
    top = grid.shape[0] - 256
    assert is_red(grid[top + 126, 11]) and is_red(grid[top + 126, 21])


def test_clear_errors(infer, mcl_checkpoint, tmp_path, capsys):
    image = tmp_path / 'img.png'
    cv2.imwrite(str(image), np.zeros((32, 32), np.uint8))
    out = ['--out-dir', str(tmp_path / 'out')]
    expect_error(infer, [str(CONFIG), mcl_checkpoint, str(image), *out], capsys,
                 str(image), '--box X0 Y0 X1 Y1')
    expect_error(infer, [str(CONFIG), mcl_checkpoint, str(tmp_path / 'nope.npz'), *out], capsys,
                 'nope.npz: no such file')
    expect_error(infer, [str(CONFIG), str(tmp_path / 'no.pth'), str(image), *out], capsys,
                 'no.pth: no such file')
    text = tmp_path / 'notes.txt'
    text.write_text('hello')
    expect_error(infer, [str(CONFIG), mcl_checkpoint, str(text), *out], capsys,
                 'unsupported type')
    broken = tmp_path / 'broken.png'
    broken.write_bytes(b'not a png')
    expect_error(infer, [str(CONFIG), mcl_checkpoint, str(broken), *out, '--box', '1', '1', '5',
                         '5'], capsys, 'broken.png', 'not a readable image')
    corrupt = tmp_path / 'corrupt.npz'
    corrupt.write_bytes(b'not a zip')
    expect_error(infer, [str(CONFIG), mcl_checkpoint, str(corrupt), *out], capsys,
                 'corrupt.npz', 'cannot read')
    expect_error(infer, [str(CONFIG), mcl_checkpoint, str(image), *out, '--box', '1', '1', '40',
                         '5'], capsys, 'outside the 32 x 32 image')
    expect_error(infer, [str(CONFIG), mcl_checkpoint, str(image), *out, '--box', '9', '1', '4',
                         '5'], capsys, 'x0 <= x1')
    assert not (tmp_path / 'out').exists()
