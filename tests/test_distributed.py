"""The Dask path on a real LocalCluster of 2 worker processes: same bytes as one process."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

distributed = pytest.importorskip("dask.distributed", reason="dask[distributed] not installed (optional extra)")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


def test_folder_round_trip_on_a_local_cluster_matches_one_process(tmp_path, client):
    import diffcodec
    from diffcodec.distributed import compress_folder, decompress_folder

    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    yy, xx = np.mgrid[0:48, 0:80]
    for i in range(4):
        img = np.dstack([(xx * 3 + i) % 256, (yy * 5) % 256, (xx + yy + 9 * i) % 256]).astype(np.uint8)
        Image.fromarray(img).save(src / ("sub" if i % 2 else "") / f"im{i}.png")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    report = compress_folder(src, tmp_path / "dcf", quality=60, client=client)
    assert len(report.written) == 4 and list(report.failed) == [src / "broken.png"]
    assert "damaged or unsupported image" in report.failed[src / "broken.png"]
    for out in report.written:
        rel = out.relative_to(tmp_path / "dcf").with_suffix(".png")
        assert out.read_bytes() == diffcodec.compress(src / rel, quality=60)  # the single-process bytes
    decoded = decompress_folder(tmp_path / "dcf", tmp_path / "png", client=client)
    assert len(decoded.written) == 4 and not decoded.failed
    for out in decoded.written:
        dcf = (tmp_path / "dcf" / out.relative_to(tmp_path / "png")).with_suffix(".dcf")
        assert np.array_equal(np.asarray(Image.open(out)), np.asarray(diffcodec.decompress(dcf.read_bytes())))
    again = compress_folder(src, tmp_path / "dcf", quality=60, client=client)  # no --force: nothing overwritten
    assert not again.written and all("exists" in m for p, m in again.failed.items() if p.name != "broken.png")
