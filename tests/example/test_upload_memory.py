"""Checking an upload stays within a bounded memory budget, whatever image under the limits it is.

The budget: validating one upload raises the worker's peak memory by at most 64 MB, for
any image under the limits (10 MB, 50 megapixels). Before, a 49-megapixel PNG cost about
190 MB, a progressive JPEG of the same size about 150 MB and a WebP about 750 MB: Pillow
decodes the whole image into memory.

``tracemalloc`` cannot measure this: Pillow and its codecs (libjpeg, zlib, libwebp)
allocate with ``malloc``, which tracemalloc does not see (a 190 MB PNG decode shows as
about 2 MB). So each image is checked in a child process that reports how far its peak
resident memory (``VmHWM``, reset just before the check) rose above its resident memory
before the check.

The big images are generated once per session, in a child process too (that one needs
a few hundred MB for a moment).
"""

from __future__ import annotations

import io
import json
import os
import random
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

from tests.example.conftest import image_bytes, upload
from tests.pythonpath import child_pythonpath

BUDGET_MB = 64

#: Generates the images named on the command line into the directory given first.
GENERATE = r"""
import sys
from pathlib import Path
from PIL import Image

target = Path(sys.argv[1])
for spec in sys.argv[2:]:
    name, fmt, width, height, options = spec.split(":", 4)
    width, height = int(width), int(height)
    # A smooth gradient: compresses well (every file stays under 10 MB) and is no
    # special case for any codec.
    image = Image.linear_gradient("L").resize((width, height))
    mirrored, rotated = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), image.rotate(90, expand=False)
    image = Image.merge("RGB", (image, mirrored, rotated))
    kwargs = eval(options)
    image.save(target / name, fmt, **kwargs)
    del image
"""

#: Checks one file as the upload view does and prints the result and the peak memory rise.
MEASURE = r"""
import json, os, sys
import django
django.setup()
from django.core.files.uploadedfile import TemporaryUploadedFile
from hotel import uploads

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
path = sys.argv[1]
# As Django hands over an upload over 2.5 MB: a temporary file on disk.
upload = TemporaryUploadedFile(os.path.basename(path), "application/octet-stream", os.path.getsize(path), None)
with open(path, "rb") as source:
    upload.write(source.read())
upload.seek(0)
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current resident size
except OSError:
    pass
before = status("VmRSS")
try:
    checked = uploads.check_photo(upload)
    result = "ok"
except uploads.PhotoRejected as exc:
    result = str(exc)
print(json.dumps({"result": result, "peak_rise": status("VmHWM") - before}))
"""


def _worst_case_images() -> dict[str, str]:
    """name -> "name:format:width:height:save options" for images at the size limits."""
    from hotel import uploads

    # The largest progressive JPEG / WebP the check still decodes in full (just under
    # its decode budget); larger ones are checked without a full decode.
    budget = uploads.decode_budget() if hasattr(uploads, "decode_budget") else 48 * 2**20
    side_jpeg = int((budget / getattr(uploads, "JPEG_COEFFICIENT_BYTES_PER_PIXEL_444", 6)) ** 0.5) - 16
    side_webp = int((budget / getattr(uploads, "WEBP_DECODE_BYTES_PER_PIXEL", 16)) ** 0.5) - 16
    specs = [
        ("png-49mp.png", "PNG", 7000, 7000, "{}"),
        ("png-49mp-rgba.png", "PNG", 7000, 7000, "{}"),
        ("jpeg-49mp-baseline.jpg", "JPEG", 7000, 7000, "{'quality': 90}"),
        ("jpeg-49mp-progressive-444.jpg", "JPEG", 7000, 7000, "{'quality': 90, 'progressive': True, 'subsampling': 0}"),
        ("jpeg-49mp-progressive-420.jpg", "JPEG", 7000, 7000, "{'quality': 90, 'progressive': True}"),
        (
            "jpeg-progressive-at-budget.jpg",
            "JPEG",
            side_jpeg,
            side_jpeg,
            "{'quality': 90, 'progressive': True, 'subsampling': 0}",
        ),
        ("webp-49mp-lossy.webp", "WEBP", 7000, 7000, "{'quality': 80}"),
        ("webp-49mp-lossless.webp", "WEBP", 7000, 7000, "{'lossless': True}"),
        ("webp-at-budget.webp", "WEBP", side_webp, side_webp, "{'quality': 80}"),
    ]
    return {name: f"{name}:{fmt}:{w}:{h}:{options}" for name, fmt, w, h, options in specs}


@pytest.fixture(scope="session")
def big_images(tmp_path_factory) -> Path:
    """The worst-case images, generated once in a child process."""
    target = tmp_path_factory.mktemp("big-images")
    specs = list(_worst_case_images().values())
    # RGBA for the one PNG that asks for it: a fourth channel widens every row.
    script = GENERATE.replace(
        "    kwargs = eval(options)",
        "    if 'rgba' in name:\n        image = image.convert('RGBA')\n    kwargs = eval(options)",
    )
    subprocess.run([sys.executable, "-c", script, str(target), *specs], check=True, timeout=300)
    return target


def _measure(path: Path) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": child_pythonpath()},
        cwd=path.parent,  # not the tree: see tests/pythonpath.py
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


NAMES = [
    "png-49mp.png",
    "png-49mp-rgba.png",
    "jpeg-49mp-baseline.jpg",
    "jpeg-49mp-progressive-444.jpg",
    "jpeg-49mp-progressive-420.jpg",
    "jpeg-progressive-at-budget.jpg",
    "webp-49mp-lossy.webp",
    "webp-49mp-lossless.webp",
    "webp-at-budget.webp",
]


def test_the_list_covers_every_generated_image():
    assert sorted(NAMES) == sorted(_worst_case_images())


@pytest.mark.parametrize("name", NAMES)
def test_checking_an_image_at_the_limits_stays_within_the_memory_budget(big_images, name):
    path = big_images / name
    assert path.stat().st_size < 10 * 1024 * 1024  # under the size limit, so it must be accepted

    measured = _measure(path)

    peak_mb = measured["peak_rise"] / 1024 / 1024
    print(f"\n{name}: {path.stat().st_size / 1024:.0f} KB, check peak +{peak_mb:.1f} MB")
    assert measured["result"] == "ok"
    assert peak_mb <= BUDGET_MB, f"{name}: validation raised peak memory by {peak_mb:.1f} MB"


# -- the bounded checks refuse what a full decode refuses -------------------------------------


def _check(data: bytes, name: str = "photo") -> str:
    from hotel import uploads

    try:
        uploads.check_photo(upload(name, data, "application/octet-stream"))
    except uploads.PhotoRejected as exc:
        return str(exc)
    return "ok"


def _pillow_decodes(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception:  # noqa: BLE001
        return False
    return True


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(width: int, height: int, raw: bytes, *, interlace: int = 0, color_type: int = 2, split: int = 0) -> bytes:
    """A PNG with exactly this (filtered, uncompressed) image data; IDAT split into ``split``-byte chunks."""
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, interlace)
    compressed = zlib.compress(raw)
    pieces = [compressed[i : i + split] for i in range(0, len(compressed), split)] if split else [compressed]
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + b"".join(_chunk(b"IDAT", piece) for piece in pieces)
        + _chunk(b"IEND", b"")
    )


def _adam7_raw(width: int, height: int, channels: int = 3) -> bytes:
    raw = b""
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    for x0, y0, dx, dy in passes:
        pass_width = len(range(x0, width, dx))
        pass_height = len(range(y0, height, dy))
        if pass_width and pass_height:
            raw += (b"\x01" + bytes(range(pass_width * channels))) * pass_height
    return raw


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"])
def test_png_of_every_colour_type_and_depth_is_accepted(mode):
    image = Image.linear_gradient("L").resize((37, 23)).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    assert _check(buffer.getvalue()) == "ok"


def test_png_image_data_split_over_many_chunks_is_accepted():
    raw = b"".join(b"\x00" + bytes(range(30)) for _ in range(10))  # 10 rows of 10 RGB pixels
    data = _png(10, 10, raw, split=7)
    assert _pillow_decodes(data)
    assert _check(data) == "ok"


def test_interlaced_png_is_accepted_and_its_truncation_refused():
    from hotel import uploads

    raw = _adam7_raw(13, 11)
    data = _png(13, 11, raw, interlace=1)
    assert _pillow_decodes(data)
    assert _check(data) == "ok"
    short = _png(13, 11, raw[:-5], interlace=1)  # valid zlib, valid CRCs: only the rows are missing
    assert not _pillow_decodes(short)
    assert _check(short) == uploads.DAMAGED


def test_png_with_an_invalid_row_filter_is_refused():
    from hotel import uploads

    raw = b"".join(bytes([7 if row == 5 else 0]) + bytes(30) for row in range(10))
    data = _png(10, 10, raw)
    assert not _pillow_decodes(data)
    assert _check(data) == uploads.DAMAGED


def test_png_whose_compressed_stream_is_cut_short_is_refused():
    """Every chunk CRC is valid (so verify() passes); only inflating the data finds the damage."""
    from hotel import uploads

    raw = b"".join(b"\x00" + bytes(random.Random(row).getrandbits(8) for _ in range(300)) for row in range(100))
    compressed = zlib.compress(raw)[:-400]
    header = struct.pack(">IIBBBBB", 100, 100, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", compressed) + _chunk(b"IEND", b"")
    assert not _pillow_decodes(data)
    assert _check(data) == uploads.DAMAGED


def test_png_check_agrees_with_a_full_decode_on_damaged_data():
    """Random byte changes inside the image data (CRCs fixed up): refused exactly when Pillow cannot decode."""
    from hotel import uploads

    source = image_bytes("PNG", (40, 30), noise=True)
    start = source.index(b"IDAT") + 4
    length = struct.unpack(">I", source[start - 8 : start - 4])[0]
    rng = random.Random(20261129)
    verdicts = []
    for _ in range(60):
        body = bytearray(source[start : start + length])
        for _ in range(rng.randint(1, 3)):
            body[rng.randrange(len(body))] = rng.getrandbits(8)
        data = source[: start - 4] + _chunk(b"IDAT", bytes(body))[4:] + source[start + length + 4 :]
        expected = "ok" if _pillow_decodes(data) else uploads.DAMAGED
        verdicts.append(expected)
        assert _check(data) == expected
    assert "ok" in verdicts or uploads.DAMAGED in verdicts


def _progressive_jpeg(size=(200, 150)) -> bytes:
    return image_bytes("JPEG", size, noise=True, quality=90, progressive=True, subsampling=0)


def test_progressive_jpeg_over_the_decode_budget_is_accepted_by_its_structure(settings):
    settings.HOTEL_OFFER_PHOTO_DECODE_BUDGET = 1000  # far less than this JPEG's coefficients
    assert _check(_progressive_jpeg()) == "ok"


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.9, 0.999])
def test_truncated_progressive_jpeg_over_the_budget_is_refused(settings, cut):
    from hotel import uploads

    settings.HOTEL_OFFER_PHOTO_DECODE_BUDGET = 1000
    data = _progressive_jpeg()
    assert _check(data[: int(len(data) * cut)]) == uploads.DAMAGED


def test_jpeg_structure_damage_is_refused_before_any_decode(settings):
    from hotel import uploads

    settings.HOTEL_OFFER_PHOTO_DECODE_BUDGET = 1000
    data = bytearray(_progressive_jpeg())
    sos = data.index(b"\xff\xda")
    data[sos + 2 : sos + 4] = b"\xff\xf0"  # a scan header longer than the file
    assert _check(bytes(data)) == uploads.DAMAGED


@pytest.mark.parametrize(
    ("budget", "decoded"), [(None, True), (1000, False)], ids=["within-budget-decoded", "over-budget-walked"]
)
def test_progressive_jpeg_is_decoded_only_within_the_budget(settings, monkeypatch, budget, decoded):
    if budget:
        settings.HOTEL_OFFER_PHOTO_DECODE_BUDGET = budget
    loads = []
    real_load = Image.Image.load

    def load(self):
        loads.append(self.format)
        return real_load(self)

    monkeypatch.setattr(Image.Image, "load", load)
    assert _check(_progressive_jpeg()) == "ok"
    assert ("JPEG" in loads) is decoded


def test_webp_over_the_decode_budget_is_accepted_without_decoding(settings, monkeypatch):
    settings.HOTEL_OFFER_PHOTO_DECODE_BUDGET = 1000
    loads = []
    real_load = Image.Image.load

    def load(self):
        loads.append(self.format)
        return real_load(self)

    monkeypatch.setattr(Image.Image, "load", load)
    assert _check(image_bytes("WEBP", (120, 90), noise=True)) == "ok"
    assert "WEBP" not in loads


def test_decode_budget_setting(settings):
    from hotel import uploads

    del settings.HOTEL_OFFER_PHOTO_DECODE_BUDGET
    assert uploads.decode_budget() == 48 * 1024 * 1024
