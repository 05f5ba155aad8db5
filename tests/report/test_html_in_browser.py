"""report.html in a real browser: it renders, and every embedded image decodes.

Needs ``chromium`` on PATH; without it the test is skipped, unless KAIZEN_REQUIRE_CHROMIUM is
set (as in CI), which turns the missing browser into a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

import kaizen
from kaizen.report import write_report

# Added to the test's copy of the page only: counts the images that decoded, once all loaded.
IMAGE_PROBE = """<script>
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var decoded = images.filter(function (image) {
    return image.complete && image.naturalWidth > 0;
  });
  var broken = document.querySelectorAll("img.broken").length;
  document.body.setAttribute(
    "data-images", images.length + " " + decoded.length + " " + broken);
});
</script>
"""


def _chromium() -> str:
    path = shutil.which("chromium")
    if path:
        return path
    if os.environ.get("KAIZEN_REQUIRE_CHROMIUM"):
        pytest.fail("KAIZEN_REQUIRE_CHROMIUM is set but chromium is not on PATH")
    pytest.skip("chromium is not on PATH (set KAIZEN_REQUIRE_CHROMIUM=1 to fail instead)")


def _headless(chromium: str, profile: Path, *arguments: str) -> str:
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *arguments,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture
def report_html(tiny, tmp_path) -> Path:
    """The report of a real (tiny) run with both probes."""
    run_dir = tmp_path / "run"
    kaizen.run(tiny("kaizen"), run_dir)
    return write_report(run_dir)[1]


def test_report_renders_with_every_image_decoded(report_html, tmp_path):
    chromium = _chromium()
    # copy the page alone into an empty folder: nothing beside it to load from
    page_dir = tmp_path / "page"
    page_dir.mkdir()
    page = page_dir / "report.html"
    page.write_text(report_html.read_text().replace("</body>", IMAGE_PROBE + "</body>"))
    expected = len(re.findall(r"<img ", report_html.read_text()))
    # a heatmap and per-task curves for the classifier and for each of the two probes
    assert expected == 6

    dom = _headless(
        chromium,
        tmp_path / "profile-dom",
        "--dump-dom",
        "--virtual-time-budget=2000",
        page.as_uri(),
    )
    counts = re.search(r'data-images="(\d+) (\d+) (\d+)"', dom)
    assert counts, dom[-2000:]
    assert counts.groups() == (str(expected), str(expected), "0")

    shot = tmp_path / "shot.png"
    _headless(
        chromium,
        tmp_path / "profile-shot",
        f"--screenshot={shot}",
        "--window-size=1200,2000",
        page.as_uri(),
    )
    with Image.open(shot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=4096)
    # None: more than 4096 colours; a blank page has one or two
    assert colours is None or len(colours) > 16
