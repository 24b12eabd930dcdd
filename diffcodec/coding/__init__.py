"""Image tensor ↔ latent ↔ symbols: quantization and the exact networks that choose every
probability, so that the entropy coder of :mod:`bitstream` writes and reads the same
symbols on every machine.

- :mod:`~diffcodec.coding.codec`: analysis, quantization, entropy coding and synthesis of one image.
- :mod:`~diffcodec.coding.exact_hyper`: hyper-decoder and context networks in integer arithmetic.
"""
