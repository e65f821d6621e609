"""Tests for impasto.imageio: every image here is made on the spot, small, under tmp_path."""

from __future__ import annotations

import errno
import io
import os
import struct
import warnings
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import ExifTags, Image, ImageCms, ImageFile

from impasto import imageio
from impasto.errors import InputError, UsageError

W, H = 16, 12
RED = (255, 0, 0)
GREY = (128, 128, 128)


def close(pixel: tuple[int, ...], expected: tuple[int, ...], tol: int = 12) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(pixel, expected, strict=True))


def noise(width: int = W, height: int = H, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def write_png(
    path: Path, width: int, height: int, depth: int, ctype: int, rows: Iterable[bytes]
) -> None:
    """A PNG written chunk by chunk, for sizes and depths Pillow would not write for us cheaply."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for row in rows) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def linear_srgb_profile() -> bytes:
    """A minimal ICC v2 matrix/TRC profile: sRGB primaries with gamma 1.0 (i.e. not sRGB)."""

    def s15(*values: float) -> bytes:
        return b"".join(struct.pack(">i", round(v * 65536)) for v in values)

    def xyz(*values: float) -> bytes:
        return b"XYZ \0\0\0\0" + s15(*values)

    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, 256) + b"\0\0"  # gamma 1.0 (u8.8)
    tags = [
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.4361, 0.2225, 0.0139)),
        (b"gXYZ", xyz(0.3851, 0.7169, 0.0971)),
        (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    start = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        table += sig + struct.pack(">II", start + len(data), len(body))
        data += body + b"\0" * (-len(body) % 4)
    header = (
        struct.pack(">I", start + len(data))
        + b"\0" * 4
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 28
        + s15(0.9642, 1.0, 0.8249)
        + b"\0" * 48
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


# --- loading: orientation, modes, depths, colour management ------------------------------------


@pytest.mark.parametrize(
    ("orientation", "red_at", "not_red_at"),
    [(6, (10, 1), (1, 1)), (8, (1, 14), (10, 14))],  # 6: turn clockwise; 8: counter-clockwise
)
def test_exif_orientation_is_applied(
    tmp_path: Path, orientation: int, red_at: tuple[int, int], not_red_at: tuple[int, int]
) -> None:
    img = Image.new("RGB", (W, H), GREY)
    img.paste(RED, (0, 0, 4, 4))  # stored top-left corner
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    img.save(tmp_path / "turned.jpg", exif=exif, quality=95)

    out = imageio.load_image(tmp_path / "turned.jpg")

    assert out.size == (H, W)
    assert close(out.getpixel(red_at), RED, tol=40)  # type: ignore[arg-type]
    assert close(out.getpixel(not_red_at), GREY, tol=40)  # type: ignore[arg-type]
    assert "exif" not in out.info  # the orientation must not be applied twice by a later viewer


def test_cmyk_jpeg_loads_as_plausible_rgb(tmp_path: Path) -> None:
    img = Image.new("CMYK", (W, H), (0, 255, 255, 0))  # red
    img.paste((255, 0, 0, 0), (8, 0, W, H))  # cyan on the right
    img.save(tmp_path / "print.jpg", quality=95)  # Pillow writes an Adobe (inverted) CMYK JPEG

    out = imageio.load_image(tmp_path / "print.jpg")

    assert out.mode == "RGB"
    assert close(out.getpixel((2, 6)), RED, tol=20)  # type: ignore[arg-type]
    assert close(out.getpixel((13, 6)), (0, 255, 255), tol=20)  # type: ignore[arg-type]


def test_greyscale_l_becomes_rgb(tmp_path: Path) -> None:
    Image.new("L", (W, H), 77).save(tmp_path / "grey.png")
    out = imageio.load_image(tmp_path / "grey.png")
    assert (out.mode, out.size, out.getpixel((3, 3))) == ("RGB", (W, H), (77, 77, 77))


def test_la_transparent_becomes_white(tmp_path: Path) -> None:
    img = Image.new("LA", (W, H), (10, 255))
    img.paste((10, 0), (0, 0, 8, H))
    img.save(tmp_path / "la.png")
    out = imageio.load_image(tmp_path / "la.png")
    assert out.getpixel((2, 2)) == (255, 255, 255)
    assert out.getpixel((12, 2)) == (10, 10, 10)


def test_rgba_is_composited_over_white(tmp_path: Path) -> None:
    img = Image.new("RGBA", (W, H), (0, 0, 0, 0))  # transparent *black*
    img.paste((255, 0, 0, 128), (8, 0, W, H))  # half-transparent red
    img.save(tmp_path / "rgba.png")
    out = imageio.load_image(tmp_path / "rgba.png")
    assert out.mode == "RGB"
    assert out.getpixel((2, 2)) == (255, 255, 255)
    assert close(out.getpixel((12, 2)), (255, 127, 127), tol=2)  # type: ignore[arg-type]


def test_palette_with_transparency(tmp_path: Path) -> None:
    img = Image.new("P", (W, H), 0)
    img.putpalette([0, 0, 0, 0, 200, 0])
    img.paste(1, (8, 0, W, H))
    img.save(tmp_path / "pal.png", transparency=0)
    out = imageio.load_image(tmp_path / "pal.png")
    assert out.getpixel((2, 2)) == (255, 255, 255)
    assert out.getpixel((12, 2)) == (0, 200, 0)


def test_one_bit(tmp_path: Path) -> None:
    img = Image.new("1", (W, H), 0)
    img.paste(1, (8, 0, W, H))
    img.save(tmp_path / "bits.png")
    out = imageio.load_image(tmp_path / "bits.png")
    assert (out.getpixel((2, 2)), out.getpixel((12, 2))) == ((0, 0, 0), (255, 255, 255))


def test_sixteen_bit_grey_png_is_scaled_not_saturated(tmp_path: Path) -> None:
    arr = np.full((H, W), 32768, dtype=np.uint16)
    arr[:, 8:] = 65535
    Image.fromarray(arr).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as probe:
        assert probe.mode.startswith("I;16")  # the case under test

    out = imageio.load_image(tmp_path / "deep.png")

    assert out.getpixel((2, 2)) == (128, 128, 128)
    assert out.getpixel((12, 2)) == (255, 255, 255)


@pytest.mark.parametrize(
    ("img", "expected"),
    [
        (Image.frombytes("I;16B", (2, 2), struct.pack(">4H", *[16448] * 4)), 64),
        (Image.fromarray(np.full((2, 2), 40000, dtype=np.int32)), 156),  # 'I' holding 16 bits
        (Image.fromarray(np.full((2, 2), 0.5, dtype=np.float32)), 128),  # 'F' in 0..1
        (Image.fromarray(np.full((2, 2), 200.0, dtype=np.float32)), 200),  # 'F' in 0..255
    ],
    ids=["I;16B", "I", "F-unit", "F-byte"],
)
def test_high_depth_images_in_memory(img: Image.Image, expected: int) -> None:
    assert imageio.load_image(img).getpixel((0, 0)) == (expected,) * 3


def test_sixteen_bit_rgb_png(tmp_path: Path) -> None:
    row = b"\0" + struct.pack(">3H", 0x8000, 0x4000, 0xFFFF) * W
    write_png(tmp_path / "rgb48.png", W, H, 16, 2, [row] * H)
    out = imageio.load_image(tmp_path / "rgb48.png")
    assert close(out.getpixel((3, 3)), (128, 64, 255), tol=1)  # type: ignore[arg-type]


def test_srgb_icc_profile_keeps_colours(tmp_path: Path) -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.new("RGB", (W, H), (200, 100, 30)).save(tmp_path / "srgb.png", icc_profile=srgb)
    out = imageio.load_image(tmp_path / "srgb.png")
    assert close(out.getpixel((3, 3)), (200, 100, 30), tol=2)  # type: ignore[arg-type]
    assert "icc_profile" not in out.info  # pixels are sRGB now; the old tag must not travel on


def test_non_srgb_icc_profile_is_converted(tmp_path: Path) -> None:
    # Mid-grey in linear light is much lighter once encoded as sRGB (about 188).
    Image.new("RGB", (W, H), GREY).save(tmp_path / "linear.png", icc_profile=linear_srgb_profile())
    out = imageio.load_image(tmp_path / "linear.png")
    assert close(out.getpixel((3, 3)), (188, 188, 188), tol=3)  # type: ignore[arg-type]


def test_broken_icc_profile_is_skipped_quietly(tmp_path: Path) -> None:
    Image.new("RGB", (W, H), GREY).save(tmp_path / "junk.png", icc_profile=b"not a profile" * 20)
    assert imageio.load_image(tmp_path / "junk.png").getpixel((3, 3)) == GREY


def test_pil_input_is_neither_mutated_nor_closed() -> None:
    img = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    before = img.tobytes()
    out = imageio.load_image(img)
    assert out is not img
    assert (img.mode, img.tobytes()) == ("RGBA", before)
    assert out.getpixel((0, 0)) == (255, 255, 255)


def test_truncated_images_are_not_accepted_globally() -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# --- loading: what the user can get wrong --------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cannot read image '.*x\.jpg': file not found"):
        imageio.load_image(tmp_path / "x.jpg")


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "photos.png").mkdir()
    with pytest.raises(InputError, match=r"photos\.png.*directory"):
        imageio.load_image(tmp_path / "photos.png")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.png.*empty"):
        imageio.load_image(tmp_path / "empty.png")


def test_text_file(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("hello, not a picture\n")
    with pytest.raises(InputError, match=r"'.*notes\.png' is not an image Pillow can read"):
        imageio.load_image(tmp_path / "notes.png")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(tmp_path: Path, fmt: str) -> None:
    buffer = io.BytesIO()
    noise().save(buffer, fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(InputError, match=rf"cut\.{fmt.lower()}.*truncated") as info:
        imageio.load_image(path)
    assert isinstance(info.value.__cause__, OSError)  # chained, not swallowed
    assert "\n" not in str(info.value)


def test_over_max_pixels_is_refused_before_decoding(tmp_path: Path) -> None:
    # Only one row of pixel data: decoding would fail as "truncated", so the size error proves the
    # check came from the header alone.
    row = b"\0" + bytes(3000 // 8)
    write_png(tmp_path / "big.png", 3000, 3000, 1, 0, [row])
    with pytest.raises(InputError) as info:
        imageio.load_image(tmp_path / "big.png", max_pixels=1_000_000)
    assert "big.png' is 3000x3000 pixels (9 megapixels); the limit is 1 megapixels" in str(
        info.value
    )


def test_small_limit(tmp_path: Path) -> None:
    noise().save(tmp_path / "small.png")
    with pytest.raises(InputError, match=r"small\.png' is 16x12 pixels \(192 pixels\)"):
        imageio.load_image(tmp_path / "small.png", max_pixels=100)


def test_decompression_bomb_is_refused(tmp_path: Path) -> None:
    # A real, valid 20000x20000 1-bit PNG that is tiny on disk but 400 MB once decoded.
    row = b"\0" + bytes(20000 // 8)
    write_png(tmp_path / "bomb.png", 20000, 20000, 1, 0, (row for _ in range(20000)))
    assert (tmp_path / "bomb.png").stat().st_size < 100_000
    with pytest.raises(InputError, match=r"bomb\.png' is too large"):
        imageio.load_image(tmp_path / "bomb.png", max_pixels=10**9)


def test_pillow_bomb_warning_is_an_error_even_when_warnings_are_ignored(tmp_path: Path) -> None:
    # 100 Mpx: within our default limit but over Pillow's warning threshold (~89.5 Mpx).
    write_png(tmp_path / "warn.png", 10000, 10000, 1, 0, [b"\0" + bytes(1250)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        filters = list(warnings.filters)
        with pytest.raises(InputError, match=r"warn\.png' is too large"):
            imageio.load_image(tmp_path / "warn.png")
        assert warnings.filters == filters  # our stricter filter was local


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read anything")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.png"
    noise().save(path)
    path.chmod(0)
    with pytest.raises(InputError, match=r"secret\.png.*permission denied"):
        imageio.load_image(path)


# --- resizing and tensors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "longest", "expected"),
    [
        ((16, 12), 8, (8, 6)),  # landscape, shrink
        ((12, 16), 8, (6, 8)),  # portrait, shrink
        ((4, 3), 8, (8, 6)),  # enlarge
        ((10, 10), 5, (5, 5)),
        ((100, 1), 10, (10, 1)),  # a side never drops to 0
        ((1, 100), 50, (1, 50)),
    ],
)
def test_resize_longest(size: tuple[int, int], longest: int, expected: tuple[int, int]) -> None:
    assert imageio.resize_longest(Image.new("RGB", size), longest).size == expected


def test_resize_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[Any] = []
    original = Image.Image.resize

    def spy(self: Image.Image, size: tuple[int, int], resample: Any = None, **kw: Any) -> Any:
        used.append(resample)
        return original(self, size, resample, **kw)

    monkeypatch.setattr(Image.Image, "resize", spy)
    imageio.resize_longest(noise(), 8)
    imageio.resize_longest(noise(), 32)
    imageio.resize_to(noise(), (32, 6))  # shrinking on either side counts as shrinking
    assert used == [Image.Resampling.LANCZOS, Image.Resampling.BICUBIC, Image.Resampling.LANCZOS]


def test_resize_rejects_zero() -> None:
    with pytest.raises(UsageError):
        imageio.resize_longest(noise(), 0)
    with pytest.raises(UsageError):
        imageio.resize_to(noise(), (0, 5))


def test_tensor_round_trip_is_exact() -> None:
    img = noise()
    t = imageio.to_tensor(img)
    assert (t.shape, t.dtype) == ((1, 3, H, W), torch.float32)
    assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0
    assert float(t[0, 0, 0, 0]) == pytest.approx(img.getpixel((0, 0))[0] / 255)  # type: ignore[index]
    assert imageio.to_image(t).tobytes() == img.tobytes()
    assert imageio.to_image(t[0].double()).tobytes() == img.tobytes()  # (3, H, W), float64


def test_to_image_clamps() -> None:
    t = torch.tensor([-1.0, 2.0, float("nan")]).view(3, 1, 1)
    assert imageio.to_image(t).getpixel((0, 0)) == (0, 255, 0)
    with pytest.raises(ValueError):
        imageio.to_image(torch.zeros(2, 3, 4, 4))


# --- saving -------------------------------------------------------------------------------------

META = {"impasto": "0.1", "style": "Hokusai – The Great Wave"}  # non-Latin-1 on purpose


@pytest.mark.parametrize(("ext", "tol"), [(".png", 0), (".jpg", 12), (".jpeg", 12), (".webp", 20)])
def test_save_round_trip_with_metadata(tmp_path: Path, ext: str, tol: int) -> None:
    img = Image.new("RGB", (W, H), (200, 100, 30))
    img.paste((20, 40, 220), (8, 0, W, H))
    target = tmp_path / "deep" / "er" / f"out{ext}"

    assert imageio.save_image(img, target, metadata=META) == target

    back = imageio.load_image(target)
    assert close(back.getpixel((2, 2)), (200, 100, 30), tol)  # type: ignore[arg-type]
    assert close(back.getpixel((13, 2)), (20, 40, 220), tol)  # type: ignore[arg-type]
    assert imageio.read_metadata(target) == META
    assert os.listdir(target.parent) == [target.name]


def test_read_metadata_without_any(tmp_path: Path) -> None:
    imageio.save_image(noise(), tmp_path / "plain.jpg")
    assert imageio.read_metadata(tmp_path / "plain.jpg") == {}
    with pytest.raises(InputError, match="file not found"):
        imageio.read_metadata(tmp_path / "nothing.png")


def test_read_metadata_keeps_a_foreign_jpeg_comment(tmp_path: Path) -> None:
    noise().save(tmp_path / "camera.jpg", comment="shot on a phone")
    assert imageio.read_metadata(tmp_path / "camera.jpg") == {"comment": "shot on a phone"}


def test_saved_file_mode_follows_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = imageio.save_image(noise(), tmp_path / "shared.png")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("name", ["x.gif", "x.tiff", "x"])
def test_unsupported_extension(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError, match=r"x.*use \.png, \.jpg or \.webp"):
        imageio.save_image(noise(), tmp_path / name)
    assert os.listdir(tmp_path) == []
    with pytest.raises(UsageError, match=r"unsupported output type '\.gif' for 'x\.gif'"):
        imageio.check_output_path("x.gif")


def test_check_output_path_creates_nothing(tmp_path: Path) -> None:
    assert imageio.check_output_path(tmp_path / "a" / "b.png") == tmp_path / "a" / "b.png"
    assert not (tmp_path / "a").exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="not a directory"):
        imageio.check_output_path(tmp_path / "file" / "out.png")


@pytest.mark.parametrize(
    "failure", [KeyboardInterrupt(), OSError(errno.ENOSPC, "No space left on device")]
)
def test_save_is_atomic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    target = imageio.save_image(noise(seed=1), tmp_path / "out.png")
    before = target.read_bytes()

    def half_written(self: Image.Image, fp: Any, *args: Any, **kwargs: Any) -> None:
        fp.write(b"\x89PNG half an image")
        raise failure

    monkeypatch.setattr(Image.Image, "save", half_written)
    expected = InputError if isinstance(failure, OSError) else KeyboardInterrupt
    with pytest.raises(expected) as info:
        imageio.save_image(noise(seed=2), target)

    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["out.png"]
    if expected is InputError:
        assert str(info.value) == f"cannot write '{target}': No space left on device"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(InputError, match=r"locked.*permission"):
            imageio.check_output_path(locked / "out.png")
        with pytest.raises(InputError, match=r"out\.png"):
            imageio.save_image(noise(), locked / "sub" / "out.png")
    finally:
        locked.chmod(0o755)
