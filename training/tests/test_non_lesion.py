"""The non-lesion pictures (non_lesion.py) and the colourfulness feature the gate's head reads."""
import struct
from pathlib import Path

import numpy as np

from skinscan_train import non_lesion, photos, preprocess


def write_pattern(path: Path, px: np.ndarray) -> None:
    h, w, bpp = px.shape
    name = b"test\0"
    header = struct.pack(">5I", 24 + len(name), 1, w, h, bpp) + b"GPAT" + name
    path.write_bytes(header + px.tobytes())


def test_gimp_pattern_reads_back_and_tiles(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    write_pattern(tmp_path / "a.pat", rgb)
    np.testing.assert_array_equal(non_lesion.read_gimp_pattern(tmp_path / "a.pat"), rgb)
    grey = rgb[..., :1]
    write_pattern(tmp_path / "g.pat", grey)
    assert (non_lesion.read_gimp_pattern(tmp_path / "g.pat") == grey).all()
    tiled = non_lesion.load(tmp_path / "a.pat")
    assert min(tiled.shape[:2]) >= non_lesion.VIEW_SIDE
    np.testing.assert_array_equal(tiled[5:10, 7:14], rgb)
    (tmp_path / "bad.pat").write_bytes(b"\0" * 40)
    try:
        non_lesion.read_gimp_pattern(tmp_path / "bad.pat")
        raise AssertionError("a file without the GPAT magic must be refused")
    except ValueError as e:
        assert "not a GIMP pattern" in str(e)


def test_views_are_bounded_and_the_first_is_the_whole_picture():
    rgb = np.random.default_rng(1).integers(0, 256, (600, 900, 3), dtype=np.uint8)
    vs = non_lesion.views(rgb, 6, np.random.default_rng(2))
    assert len(vs) == 6
    assert vs[0].shape == (299, 448, 3)  # the whole picture, downscaled, same aspect
    assert all(max(v.shape[:2]) <= non_lesion.VIEW_SIDE and v.dtype == np.uint8 for v in vs)


def test_one_group_per_picture():
    root = Path("/r")
    g = lambda rel: non_lesion._group(root / rel, root)
    assert g("usr/share/wallpapers/Kite/contents/images/1920x1080.jpg") == g("usr/share/wallpapers/Kite/contents/images/5120x2880.png")
    assert g("usr/share/backgrounds/gnome/wood-d.webp") == g("usr/share/backgrounds/gnome/wood-l.webp")
    assert g("usr/share/icons/x/128x128/emblems/debian.png") == g("usr/share/icons/x/256x256/emblems/debian.png")
    assert g("usr/share/backgrounds/mate/nature/Garden.jpg") != g("usr/share/backgrounds/mate/nature/Dune.jpg")


def test_chroma_is_zero_for_grey_and_one_for_pure_colour():
    grey = np.full((224, 224, 3), 120.0)
    assert photos.chroma(preprocess.normalize(grey)) == 0.0
    red = np.zeros((224, 224, 3)); red[..., 0] = 255
    assert abs(photos.chroma(preprocess.normalize(red)) - 1.0) < 1e-6
    skin = np.broadcast_to(np.array([200.0, 150, 120]), (224, 224, 3))
    assert abs(photos.chroma(preprocess.normalize(skin)) - 80 / 255) < 1e-5
