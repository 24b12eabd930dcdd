"""Split the training corpus into shards small enough to carry to a lent GPU in one call.

    python -m diffcodec.training.shards ../shared/data/train --out .shards --max-mib 24

The device tool carries at most 64 MiB per call (repository, snapshot and data together),
while the corpus is about 143 MB of JPEG/WebP files. The files are copied unchanged (they
are already compressed; re-encoding would add artefacts) into ``shard-NN/`` folders of at
most ``--max-mib`` each. Files are dealt to shards in a seeded random order, so every shard
mixes all sources of the corpus, and a run that takes shard ``k`` in its ``k``-th call sees
the whole corpus over ``len(shards)`` calls. ``MANIFEST.json`` lists each shard's files and
their SHA-256.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
from pathlib import Path

from diffcodec.training.data import list_images


def plan_shards(files: list[tuple[str, int]], max_bytes: int, seed: int = 0) -> list[list[str]]:
    """Deal ``(name, size)`` pairs, largest first, to the emptiest of the fewest shards of at most ``max_bytes``.

    Shards come out about equally full; a seeded shuffle before the (stable) size sort breaks
    ties, so each shard mixes the corpus's sources.
    """
    order = list(files)
    random.Random(seed).shuffle(order)
    order.sort(key=lambda f: -f[1])
    if order and order[0][1] > max_bytes:
        raise ValueError(f"{order[0][0]} ({order[0][1]} bytes) is larger than one shard")
    count = max(1, -(-sum(size for _, size in order) // max_bytes))
    while True:
        shards: list[list[str]] = [[] for _ in range(count)]
        sizes = [0] * count
        for name, size in order:
            i = min(range(count), key=sizes.__getitem__)
            shards[i].append(name)
            sizes[i] += size
        if max(sizes) <= max_bytes:
            return [sorted(s) for s in shards]
        count += 1


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--max-mib", type=float, default=24.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    paths = {str(path.relative_to(args.corpus)): path for path in list_images(args.corpus)}
    if not paths:
        raise SystemExit(f"error: no images under {args.corpus}")
    plan = plan_shards([(name, path.stat().st_size) for name, path in paths.items()],
                       int(args.max_mib * 1024 * 1024), args.seed)
    manifest = {}
    for i, names in enumerate(plan):
        shard = args.out / f"shard-{i:02d}"
        if shard.exists():
            shutil.rmtree(shard)
        shard.mkdir(parents=True)
        entries = {}
        for name in names:
            dest = shard / name.replace("/", "__")
            shutil.copyfile(paths[name], dest)
            entries[dest.name] = hashlib.sha256(dest.read_bytes()).hexdigest()
        manifest[shard.name] = entries
        size = sum(f.stat().st_size for f in shard.iterdir())
        print(f"{shard}: {len(names)} files, {size / 2**20:.1f} MiB")
    (args.out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
