"""Headless Chromium (Debian's ``chromium`` package, `make browser-deps`) for the report tests.

Outside CI a test skips where Chromium is absent; under ``CI=true`` it fails, since CI
installs it (`make system-deps`). Each call starts Chromium in a session of its own and,
should it outlive its timeout, kills that process group by the PID it started.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

from shared_data import skip_or_fail

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def require_chromium() -> str:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    skip_or_fail("headless Chromium not found (as root: make browser-deps, i.e. apt-get install chromium)",
                 "the browser test must run")


def run_chromium(binary: str, profile: Path, *args: str, timeout: float = 60) -> str:
    """Chromium headless with ``args``; its stdout. ``profile``: a fresh user-data dir."""
    argv = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}", *args]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, env={**os.environ, "HOME": str(profile)})
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the group of the PID started here
        process.communicate()
        raise
    if process.returncode != 0:
        raise AssertionError(f"chromium {' '.join(args)} failed ({process.returncode}):\n{err[-3000:]}")
    return out


def screenshot(binary: str, url: str, png: Path, profile: Path, size: str = "1280,1600") -> Path:
    run_chromium(binary, profile, f"--window-size={size}", "--virtual-time-budget=5000",
                 f"--screenshot={png}", url)
    assert png.is_file(), f"chromium wrote no screenshot for {url}"
    return png


def dump_dom(binary: str, url: str, profile: Path) -> str:
    """The DOM after the page's scripts ran (the report builds its pages in JavaScript)."""
    return run_chromium(binary, profile, "--virtual-time-budget=5000", "--dump-dom", url)


# Run after the page's own scripts (at load): what Chromium laid out, written into the DOM as
# JSON for --dump-dom to carry out. An element counts as shown when its box has an area
# and it is not hidden by CSS; a table's rows and an image's size are read from the layout.
PROBE = """<script>window.addEventListener('load', () => {
  const shown = e => { const r = e.getBoundingClientRect(), s = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'; };
  const probe = {
    text: document.body.innerText,
    tables: [...document.querySelectorAll('table')].filter(shown).map(t =>
      [...t.rows].filter(shown).map(r => [...r.cells].map(c => c.innerText))),
    images: [...document.images].map(i => ({id: i.id, natural: [i.naturalWidth, i.naturalHeight],
      shown: shown(i) ? [Math.round(i.getBoundingClientRect().width), Math.round(i.getBoundingClientRect().height)]
                      : [0, 0]})),
  };
  const out = document.createElement('pre');
  out.id = 'tstl-probe';
  out.textContent = JSON.stringify(probe);
  document.body.appendChild(out);
});</script>"""


def rendered(binary: str, page: Path, profile: Path) -> dict:
    """What Chromium shows of ``page`` (a file): ``text`` (the body's rendered text, CSS-hidden
    parts left out), ``tables`` (each shown table's shown rows, as lists of cell texts,
    whitespace collapsed) and ``images`` (each ``<img>``'s ``id``, decoded ``natural`` size
    and ``shown`` size in CSS pixels, ``[0, 0]`` when not shown). The page is copied beside
    itself with :data:`PROBE` before ``</body>``, so that relative links still resolve."""
    source = page.read_text(encoding="utf-8")
    assert source.count("</body>") == 1, f"{page}: no single </body> to put the probe before"
    probed = page.with_name(f"{page.stem}.probed{page.suffix}")
    probed.write_text(source.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = dump_dom(binary, probed.as_uri(), profile)
    found = re.search(r'<pre id="tstl-probe">(.*?)</pre>', dom, re.DOTALL)
    assert found, f"the probe did not run on {page} (a script error before load?)"
    probe = json.loads(html.unescape(found[1]))
    probe["tables"] = [[[" ".join(cell.split()) for cell in row] for row in table] for table in probe["tables"]]
    return probe


def ink_fraction(png: Path) -> float:
    """The share of pixels that differ from the image's most common colour (0: uniform)."""
    from PIL import Image

    image = Image.open(png).convert("RGB")
    colours = image.getcolors(maxcolors=image.width * image.height)
    background = max(count for count, _ in colours)
    return 1.0 - background / (image.width * image.height)
