"""End-to-end CLI run on a tiny synthetic set: JSON schema, cache reuse, outputs."""
import json
import math

import numpy as np
import pytest
from PIL import Image

from benchmarks import cli, report
from benchmarks.metrics import fid


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    rng = np.random.default_rng(1)
    for i in range(2):
        y, x = np.mgrid[0:176, 0:192]
        img = np.stack([x + 30 * i, y, (x * y) % 251], -1) + rng.normal(0, 6, (176, 192, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / f"img{i}.png")
    (root / "notes.txt").write_text("not an image")
    return root


def _run(dataset, out, cache, extra=()):
    return cli.main(["run", str(dataset), "--out", str(out), "--codecs", "jpeg420,webp",
                     "--metrics", "psnr,ms-ssim", "--settings", "jpeg420=20,80",
                     "--settings", "webp=30,60,90", "--cache-dir", str(cache), "--quiet",
                     "--anchors", "/nonexistent.json", *extra])


def test_run_writes_compressai_schema(dataset, tmp_path, capsys):
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert _run(dataset, out, cache) == 0
    err = capsys.readouterr().err
    assert "10 points computed, 0 from cache" in err
    for name, n in [("jpeg420", 2), ("webp", 3)]:
        data = json.loads((out / f"{name}.json").read_text())
        assert set(data) >= {"name", "description", "results"}
        r = data["results"]
        for key in ("bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time"):
            assert len(r[key]) == n, key
        assert r["bpp"] == sorted(r["bpp"])
        assert all(0 < v < 24 for v in r["bpp"])
        assert all(10 < v < 60 for v in r["psnr-rgb"])
        assert all(0 < v <= 1 for v in r["ms-ssim-rgb"])
        assert r["psnr-rgb"] == sorted(r["psnr-rgb"])
        # CompressAI's own plot utility can read the file
        from compressai.utils.plot.__main__ import parse_json_file

        parsed = parse_json_file(out / f"{name}.json", "psnr")
        assert parsed["xs"] == r["bpp"]
    summary = (out / "summary.md").read_text()
    assert "python -m benchmarks run" in summary and "Key table" in summary
    assert (out / "rd_psnr-rgb.png").stat().st_size > 1000
    bd = json.loads((out / "bd_rates.json").read_text())
    assert "JPEG 4:2:0 (ours)" in bd["pchip"]
    assert bd["pchip"]["JPEG 4:2:0 (ours)"]["jpeg420"]["psnr-rgb"] == pytest.approx(0, abs=1e-9)

    # second run: everything from the cache, identical numbers
    before = (out / "webp.json").read_text()
    assert _run(dataset, out, cache, ["--no-plots"]) == 0
    assert "0 points computed, 10 from cache" in capsys.readouterr().err
    a = json.loads(before)["results"]
    b = json.loads((out / "webp.json").read_text())["results"]
    assert a["bpp"] == b["bpp"] and a["psnr-rgb"] == b["psnr-rgb"]


def test_changed_setting_only_computes_new_point(dataset, tmp_path, capsys):
    out, cache = tmp_path / "out", tmp_path / "cache"
    _run(dataset, out, cache, ["--no-plots"])
    capsys.readouterr()
    cli.main(["run", str(dataset), "--out", str(out), "--codecs", "jpeg420", "--metrics", "psnr",
              "--settings", "jpeg420=20,50", "--cache-dir", str(cache), "--quiet", "--no-plots"])
    assert "2 points computed, 2 from cache" in capsys.readouterr().err


def test_unavailable_codec_is_skipped_with_notice(dataset, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # hides x265 / cjxl
    rc = cli.main(["run", str(dataset), "--out", str(tmp_path / "o"), "--codecs", "hevc,jxl",
                   "--metrics", "psnr", "--no-cache", "--quiet", "--no-plots"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "NOTICE: codec hevc skipped" in err and "NOTICE: codec jxl skipped" in err


def test_fid_refused_on_small_sets(dataset, tmp_path, capsys):
    rc = cli.main(["run", str(dataset), "--out", str(tmp_path / "o"), "--codecs", "jpeg420",
                   "--settings", "jpeg420=50", "--metrics", "psnr", "--no-cache", "--quiet",
                   "--no-plots", "--fid"])
    assert rc == 0
    assert "FID/KID refused" in capsys.readouterr().err
    with pytest.raises(fid.FIDRefused):
        fid.check_allowed(fid.count_patches([(512, 768)] * 24), 24)  # Kodak: 192 patches of 256 px
    kodak_128 = fid.count_patches([(512, 768)] * 24, 128)
    assert kodak_128 == 24 * (24 + 15)  # the aligned 6x4 grid and the half-shifted 5x3 grid
    fid.check_allowed(kodak_128, 24, 128)
    fid.check_allowed(fid.count_patches([(1356, 2048)] * 100), 100)
    assert fid.extract_patches(np.zeros((512, 768, 3), np.uint8), 128).shape == (39, 128, 128, 3)


def test_frechet_distance_closed_form():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(500, 4))
    assert fid.fid_from_features(f, f) == pytest.approx(0.0, abs=1e-6)
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 2.0])
    s1, s2 = np.eye(3), 4 * np.eye(3)
    # |mu|^2 = 9, trace terms: 3 + 12 - 2 * 3 * 2 = 3
    assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(12.0, abs=1e-9)
    k_same = fid.kid_from_features(f, f.copy(), subsets=5, subset_size=200)
    k_diff = fid.kid_from_features(f, f + 1.0, subsets=5, subset_size=200)
    assert abs(k_same) < k_diff


def test_patch_grid():
    assert len(fid.patch_corners(512, 768)) == 6 + 2
    assert fid.patch_corners(100, 100) == []


def test_aggregate_means_and_sorting():
    from benchmarks.dataset import ImageEntry

    ims = [ImageEntry(None, n, n, 2, 2) for n in ("a", "b")]

    def e(img, s, bpp, p):
        return {"image": img, "setting": s, "bpp": bpp, "num_bytes": 1, "height": 2, "width": 2,
                "encoding_time": 1.0, "decoding_time": 2.0, "encoding_peak_mem": 1 << 20,
                "decoding_peak_mem": None, "metrics": {"psnr-rgb": {"value": p}}}

    entries = {("c", "10", "a"): e("a", "10", 1.0, 30.0), ("c", "10", "b"): e("b", "10", 2.0, 32.0),
               ("c", "5", "a"): e("a", "5", 0.5, 20.0), ("c", "5", "b"): e("b", "5", 0.3, 22.0),
               ("c", "7", "a"): e("a", "7", 0.7, 25.0)}  # incomplete setting: left out
    pts = report.aggregate(entries, "c", [10, 5, 7], ims, ["psnr-rgb"])
    assert [p["quality"] for p in pts] == [5.0, 10.0]
    assert pts[1]["bpp"] == pytest.approx(1.5) and pts[1]["psnr-rgb"] == pytest.approx(31.0)
    assert pts[0]["encoding_peak_mem_mb"] == pytest.approx(1.0)
    assert pts[0]["decoding_peak_mem_mb"] is None
    assert math.isclose(pts[0]["bpp"], 0.4)


def test_click_command_and_bdrate_subcommand(dataset, tmp_path, capsys):
    from click.testing import CliRunner

    from diffcodec.cli import main as diffcodec_main

    res = CliRunner().invoke(diffcodec_main, ["benchmark", "--help"])
    assert res.exit_code == 0 and "--codecs" in res.output
    out = tmp_path / "o"
    assert _run(dataset, out, tmp_path / "c", ["--no-plots"]) == 0
    capsys.readouterr()
    # a curve needing 20 % fewer bits at every quality has a BD-rate of exactly -20 %
    shifted = json.loads((out / "jpeg420.json").read_text())
    shifted["name"] = "shifted"
    shifted["results"]["bpp"] = [0.8 * v for v in shifted["results"]["bpp"]]
    (out / "shifted.json").write_text(json.dumps(shifted))
    assert cli.main(["bdrate", str(out / "jpeg420.json"), str(out / "jpeg420.json"),
                     str(out / "shifted.json")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "+0.00 %" in lines[0] and "-20.00 %" in lines[1], lines
    # per point: the curve against itself differs by nothing at each of its own rates
    assert cli.main(["bdrate", str(out / "jpeg420.json"), str(out / "jpeg420.json"), "--per-point"]) == 0
    points = capsys.readouterr().out.splitlines()[1:]
    assert len(points) == len(shifted["results"]["bpp"])
    assert all(line.endswith("difference +0.0000") or line.endswith("difference -0.0000") for line in points), points


def test_parallel_workers_match_serial(dataset, tmp_path, capsys):
    args = ["--codecs", "jpeg444", "--metrics", "psnr", "--settings", "jpeg444=30,70",
            "--no-cache", "--quiet", "--no-plots", "--anchors", "/nonexistent.json"]
    assert cli.main(["run", str(dataset), "--out", str(tmp_path / "s"), *args]) == 0
    assert cli.main(["run", str(dataset), "--out", str(tmp_path / "p"), "--workers", "2",
                     *args]) == 0
    s = json.loads((tmp_path / "s" / "jpeg444.json").read_text())["results"]
    p = json.loads((tmp_path / "p" / "jpeg444.json").read_text())["results"]
    assert s["bpp"] == p["bpp"] and s["psnr-rgb"] == p["psnr-rgb"]


def test_realism_table_compares_at_matched_bpp():
    from benchmarks.report import CodecCurve
    from benchmarks.summary import realism_table

    def curve(name, bpp, lpips, dists, psnr):
        res = {"bpp": bpp, "quality": list(range(len(bpp))), "lpips": lpips, "dists": dists, "psnr-rgb": psnr}
        return CodecCurve(name, name, "", res, {})

    hevc = curve("hevc", [0.1, 0.4], [0.4, 0.2], [0.3, 0.1], [28.0, 32.0])
    fid = curve("diffcodec", [0.1, 0.4], [0.5, 0.3], [0.4, 0.2], [27.0, 31.0])
    real = curve("diffcodec-realism", [0.2, 0.8], [0.15, 0.1], [0.2, 0.1], [26.0, 30.0])
    table = realism_table([hevc, fid, real])
    lines = table.splitlines()
    rows = lines[lines.index(next(line for line in lines if line.startswith("|---"))) + 1 :]
    assert len(rows) == 2
    first = [c.strip() for c in rows[0].split("|")[1:-1]]
    # at 0.2 bpp (halfway in log-rate from 0.1 to 0.4): HEVC LPIPS 0.3, fidelity 0.4
    assert first[1] == "0.200" and first[2:5] == ["0.1500", "0.4000", "0.3000"] and first[-2] == "0.50"
    second = [c.strip() for c in rows[1].split("|")[1:-1]]
    assert second[3] == "–" and second[-1] == "–"  # 0.8 bpp is beyond both curves
    assert realism_table([hevc, fid]) == ""
    # a strength variant gets a table of its own, titled by its label
    half = CodecCurve("diffcodec-realism-s0.5", "diffcodec (realism, strength 0.5)", "",
                      dict(real.results), {})
    both = realism_table([hevc, fid, real, half])
    assert both.count("at matched bpp") == 2 and "## diffcodec (realism, strength 0.5) at matched bpp" in both


def test_cache_keeps_feature_arrays_under_their_tag(tmp_path):
    from benchmarks.cache import ResultCache

    cache, key = ResultCache(tmp_path), ("ab" * 32, "hevc", "q=30", "v1")
    feats = np.random.default_rng(0).normal(size=(39, 2048))
    assert cache.get_array(*key, fid.feature_tag(128)) is None
    cache.put_array(*key, fid.feature_tag(128), feats)
    assert np.array_equal(cache.get_array(*key, fid.feature_tag(128)), feats)
    assert cache.get_array(*key, fid.feature_tag(256)) is None  # another patch size is another array
    assert cache.get_array("ab" * 32, "hevc", "q=30", "v2", fid.feature_tag(128)) is None
    ResultCache(None).put_array(*key, "t", feats)  # caching off: nothing written, nothing read
    assert ResultCache(None).get_array(*key, "t") is None


def test_features_kept_while_decoding_spare_the_fid_pass_a_second_decode(dataset, tmp_path, monkeypatch):
    """With --fid, a point decoded by the run leaves its patch features in the cache (below the
    bpp limit only); the FID pass then reads them instead of decoding the file again."""
    from benchmarks import fid_pass, runner
    from benchmarks.cache import ResultCache
    from benchmarks.codecs import get_codec
    from benchmarks.dataset import list_images

    class FakeInception:  # a cheap stand-in with InceptionFeatures' interface
        def __call__(self, patches):
            return patches.reshape(len(patches), -1)[:, :8].astype(np.float64)

    monkeypatch.setattr(fid, "InceptionFeatures", FakeInception)
    monkeypatch.setattr(fid, "check_allowed", lambda *a, **k: None)
    monkeypatch.setattr(runner, "_INCEPTION", fid_pass.LazyInception())
    images = list_images(dataset)
    codec = get_codec("jpeg420")
    spec = runner.RunSpec(settings={"jpeg420": [20, 95]}, metrics=[], codec_versions={"jpeg420": codec.version()},
                          metric_versions={}, cache_root=str(tmp_path), fid_patch=64, fid_max_bpp=2.0)
    outcome = runner.run(images, spec, progress=False)
    cache, tag = ResultCache(tmp_path), fid.feature_tag(64)
    for im in images:
        low, high = (outcome.entries[("jpeg420", lbl, im.name)] for lbl in ("20", "95"))
        assert low["bpp"] <= 2.0 < high["bpp"]
        kept = cache.get_array(im.sha256, "jpeg420", "20", low["codec_version"], tag)
        rec = codec.decode(codec.encode(im.load(), 20))  # JPEG: the same bytes again
        assert np.array_equal(kept, FakeInception()(fid.extract_patches(np.asarray(rec), 64)))
        assert cache.get_array(im.sha256, "jpeg420", "95", high["codec_version"], tag) is None

    class NoDecode:
        def decode(self, data):
            raise AssertionError("decoded again")

    out = fid_pass.compute(images, {"jpeg420": NoDecode()}, spec, outcome, progress=False, patch=64, max_bpp=2.0)
    assert set(out["jpeg420"]) == {"20"}

    class NoInception:
        def __init__(self):
            raise AssertionError("InceptionV3 loaded although every feature is cached")

    monkeypatch.setattr(fid, "InceptionFeatures", NoInception)  # the originals' features are cached now too
    again = fid_pass.compute(images, {"jpeg420": NoDecode()}, spec, outcome, progress=False, patch=64, max_bpp=2.0)
    assert again == out
