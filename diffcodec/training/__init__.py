"""Training and its tools (not on the decode path): the shared run loop, the two trainers,
data, export, quick evaluation, and the snapshot/shard logistics of a lent GPU.

- :mod:`~diffcodec.training.loop`: learning-rate schedule, EMA, checkpoints, run log.
- :mod:`~diffcodec.training.fidelity`: the codec (``python -m diffcodec.training.fidelity``).
- :mod:`~diffcodec.training.realism`: the realism decoder (``python -m diffcodec.training.realism``).
- :mod:`~diffcodec.training.data`, :mod:`~diffcodec.training.export`,
  :mod:`~diffcodec.training.evaluate`, :mod:`~diffcodec.training.evaluate_realism`.
- :mod:`~diffcodec.training.parts`, :mod:`~diffcodec.training.shards`,
  :mod:`~diffcodec.training.crossdevice`: snapshots, data shards and cross-device checks for GPU sittings.
"""
