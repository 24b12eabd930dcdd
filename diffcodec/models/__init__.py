"""The networks, as ``nn.Module``s only: no coding, no files, no training loop.

- :mod:`~diffcodec.models.hyperprior`: analysis/synthesis transforms, hyperprior, channel
  context and gain vectors of the codec (the fidelity decoder is its synthesis transform).
- :mod:`~diffcodec.models.denoiser`: the realism decoder's U-Net.
- :mod:`~diffcodec.models.discriminator`: projected discriminator heads (training only).
- :mod:`~diffcodec.models.precision`: running a network in bf16 on fp32 master weights (training).
"""
