"""The comparison page: its JSON endpoint through Flask's test client, and one real comparison
in headless Chromium (Debian's package) driven by Playwright."""
from __future__ import annotations

import io
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

flask = pytest.importorskip("flask", reason="Flask not installed (pip install 'diffcodec[view]')")

from benchmarks.view.app import create_app, parse_budget  # noqa: E402
from benchmarks.view.compare import SettingRange, fit_to_budget  # noqa: E402

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _png(h=48, w=64) -> bytes:
    yy, xx = np.mgrid[0:h, 0:w]
    buf = io.BytesIO()
    Image.fromarray(np.dstack([(xx * 3) % 256, (yy * 5) % 256, (xx + yy) % 256]).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_budget_parsing():
    assert parse_budget("0.25", "bpp", 8000) == 250
    assert parse_budget("2", "kB", 10) == 2000
    for value, unit in (("-1", "bpp"), ("x", "bpp"), ("nan", "bpp"), ("1", "MB"), ("0.0001", "bpp")):
        with pytest.raises(ValueError):
            parse_budget(value, unit, 1000)


def test_fit_to_budget_takes_the_best_setting_that_fits():
    class Fake:
        def encode(self, rgb, setting):  # size grows with the setting: 10 bytes per step
            return b"x" * int(10 * setting)

    setting, data = fit_to_budget(Fake(), None, SettingRange(1, 100, grows=True), 455)
    assert setting == 45 and len(data) == 450
    setting, data = fit_to_budget(Fake(), None, SettingRange(1, 100, grows=True), 5)  # nothing fits: smallest
    assert setting == 1 and len(data) == 10


def test_endpoint_rejects_bad_input(tmp_path):
    (tmp_path / "a.png").write_bytes(_png())
    client = create_app(tmp_path, max_upload_bytes=4096, max_pixels=2000).test_client()
    assert client.get("/api/images").get_json() == ["a.png"]
    assert "Compare" in client.get("/").get_data(as_text=True)
    r = client.post("/api/compare", data={"name": "../etc/passwd", "target": "0.2", "unit": "bpp"})
    assert r.status_code == 400 and "no image named" in r.get_json()["error"]
    r = client.post("/api/compare", data={"name": "a.png", "target": "0.2", "unit": "bpp"})
    assert r.status_code == 400 and "exceeds the limit" in r.get_json()["error"]  # 64 x 48 > 2000 pixels
    r = client.post("/api/compare", data={"image": (io.BytesIO(b"not an image"), "x.png"), "target": "1", "unit": "kB"})
    assert r.status_code == 400 and "x.png: not an image" in r.get_json()["error"]
    r = client.post("/api/compare", data={"image": (io.BytesIO(b"\0" * 10000), "big.png"), "target": "1", "unit": "kB"})
    assert r.status_code == 413


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (Debian: apt-get install chromium)")
def test_one_comparison_in_a_real_browser(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    from werkzeug.serving import make_server

    source = KODAK if KODAK.is_dir() else tmp_path
    if source is tmp_path:
        (tmp_path / "synthetic.png").write_bytes(_png(256, 384))
    server = make_server("127.0.0.1", 0, create_app(source), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"])
            page = browser.new_page(viewport={"width": 1500, "height": 1300})
            page.goto(f"http://127.0.0.1:{server.server_port}/")
            if source is KODAK:
                page.select_option("#name", "kodim23.png")
            page.fill("#target", "0.15")
            page.click("#run")
            page.wait_for_selector("[data-testid=numbers-diffcodec]", timeout=300_000)
            loaded = page.evaluate("Array.from(document.querySelectorAll('.panel img'))"
                                   ".map(i => i.complete && i.naturalWidth > 0)")
            assert len(loaded) >= 3 and all(loaded)  # original, fidelity, realism, and the installed codecs
            text = page.inner_text("[data-testid=numbers-diffcodec]")
            assert "bytes" in text and "PSNR" in text and "LPIPS" in text
            nbytes = int(text.split(" bytes")[0].replace(",", ""))
            width, height = (768, 512) if source is KODAK else (384, 256)
            assert nbytes * 8 / (width * height) <= 0.15
            for name in ("jpeg420", "webp", "avif", "hevc"):  # each classical codec: a panel, an image or a reason
                assert page.query_selector(f"[data-testid=panel-{name}]") is not None
            shot = os.environ.get("DIFFCODEC_VIEW_SCREENSHOT")  # docs/view.png is made this way
            page.screenshot(path=shot or str(tmp_path / "view.png"), full_page=bool(shot))
            before = page.evaluate("document.querySelector('.panel img').style.transform")
            page.hover(".panel .viewport")
            page.mouse.wheel(0, -300)
            transforms = page.evaluate("Array.from(document.querySelectorAll('.viewport img')).map(i => i.style.transform)")
            assert len(set(transforms)) == 1 and transforms[0] != before  # every view zoomed together
            page.fill("#slider", "30")
            page.dispatch_event("#slider", "input")
            assert "inset(0px 70% 0px 0px)" in page.evaluate("document.getElementById('split-left').style.clipPath")
            browser.close()
    finally:
        server.shutdown()
