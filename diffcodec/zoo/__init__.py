"""The shipped models: the registry of model ids and checksums, the weight files in
``weights/`` with their model cards, and the one loader and exporter of those files.

- :mod:`~diffcodec.zoo.registry`: model ids, default model, retired ids, realism decoders.
- :mod:`~diffcodec.zoo.weight_files`: fp16 safetensors export and checksum-verified load.
"""
