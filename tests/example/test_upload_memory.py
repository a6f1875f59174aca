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

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    image = Image.merge("RGB", (image, image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), image.rotate(90, expand=False)))
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
        ("jpeg-progressive-at-budget.jpg", "JPEG", side_jpeg, side_jpeg,
         "{'quality': 90, 'progressive': True, 'subsampling': 0}"),
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
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
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
