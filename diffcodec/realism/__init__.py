"""The realism decoder's decode path: the fidelity image noised to a start time, then a few
denoising steps.

- :mod:`~diffcodec.realism.schedule`: the one noise schedule and the DDIM sampler, used by
  decoding and (unrolled) by training.
- :mod:`~diffcodec.realism.decode`: padding, tiling and sampling of one image.
"""
