"""Fixed probability-model tables shared bit-for-bit by every encoder and decoder.

The tables are literal constants (not computed at import time), so no platform's
``exp`` or ``log`` can change them. Regenerate with
``numpy.exp(numpy.linspace(numpy.log(0.11), numpy.log(256.0), 64))`` if the table ever changes,
which is a format change.
"""
from __future__ import annotations

import numpy as np

# Standard deviations of the quantized Gaussian used for the latent y (64 log-spaced values).
SCALE_TABLE = np.array(
    [
    float.fromhex("0x1.c28f5c28f5c2ap-4"), float.fromhex("0x1.fd8f2837ff12ep-4"), float.fromhex("0x1.20245ef9396dfp-3"), float.fromhex("0x1.45df8ca5aff37p-3"),
    float.fromhex("0x1.708b8ff98cb5cp-3"), float.fromhex("0x1.a0ce0917714e5p-3"), float.fromhex("0x1.d7624847133a6p-3"), float.fromhex("0x1.0a8e127ee2a44p-2"),
    float.fromhex("0x1.2d759a0d689b3p-2"), float.fromhex("0x1.54ef34e78414ap-2"), float.fromhex("0x1.81941aa46bd98p-2"), float.fromhex("0x1.b411930b6897dp-2"),
    float.fromhex("0x1.ed2b96a48a652p-2"), float.fromhex("0x1.16dfe3ada4c92p-1"), float.fromhex("0x1.3b64665db0b12p-1"), float.fromhex("0x1.64b11069659a9p-1"),
    float.fromhex("0x1.93662e3c7c2b3p-1"), float.fromhex("0x1.c83909d4f04f3p-1"), float.fromhex("0x1.01fb5534acfc6p+0"), float.fromhex("0x1.23c378199ba9dp+0"),
    float.fromhex("0x1.49f80c36f4ff5p+0"), float.fromhex("0x1.752d5b97cf7f6p+0"), float.fromhex("0x1.a60b1b4562de0p+0"), float.fromhex("0x1.dd4ef636066b4p+0"),
    float.fromhex("0x1.0de7b6bc7affcp+1"), float.fromhex("0x1.313f8c641bbd9p+1"), float.fromhex("0x1.59382a1011efap+1"), float.fromhex("0x1.866cb4519f527p+1"),
    float.fromhex("0x1.b98ca077cb5bdp+1"), float.fromhex("0x1.f35e5d9413e9ep+1"), float.fromhex("0x1.1a612b56336bep+2"), float.fromhex("0x1.3f5b2ce3e70b2p+2"),
    float.fromhex("0x1.692cb88555e3ep+2"), float.fromhex("0x1.98781e690d1d3p+2"), float.fromhex("0x1.cdf4efd959493p+2"), float.fromhex("0x1.053963dd4f05ep+3"),
    float.fromhex("0x1.276e382b0abefp+3"), float.fromhex("0x1.4e1db954457ddp+3"), float.fromhex("0x1.79de0e83183c4p+3"), float.fromhex("0x1.ab590859ecefbp+3"),
    float.fromhex("0x1.e34eb410de865p+3"), float.fromhex("0x1.114c22710fe4bp+4"), float.fromhex("0x1.3515af8956690p+4"), float.fromhex("0x1.5d8ee8afb3b6ep+4"),
    float.fromhex("0x1.8b54e5a19c030p+4"), float.fromhex("0x1.bf195037b0930p+4"), float.fromhex("0x1.f9a515f99e343p+4"), float.fromhex("0x1.1dedb9ff18f60p+5"),
    float.fromhex("0x1.435eb4754ff3cp+5"), float.fromhex("0x1.6db6cd382c115p+5"), float.fromhex("0x1.9d9a5eb485810p+5"), float.fromhex("0x1.d3c348d5bcfeap+5"),
    float.fromhex("0x1.0881e13c43637p+6"), float.fromhex("0x1.2b24c4ab26bccp+6"), float.fromhex("0x1.5250be6407bf5p+6"), float.fromhex("0x1.7e9dd8af256c1p+6"),
    float.fromhex("0x1.b0b8069044e93p+6"), float.fromhex("0x1.e961bf2cc5b43p+6"), float.fromhex("0x1.14bb784b37cd6p+7"), float.fromhex("0x1.38f82ab64d927p+7"),
    float.fromhex("0x1.61f39d227a7cap+7"), float.fromhex("0x1.904ce0bf7c347p+7"), float.fromhex("0x1.c4b7db07f4911p+7"), float.fromhex("0x1.fffffffffffffp+7"),
    ],
    dtype=np.float64,
)
SCALE_TABLE.setflags(write=False)

# Decision boundaries between neighbouring table entries: the geometric means, as literals too.
SCALE_BOUNDS = np.array([float.fromhex("0x1.df2701e9e5e94p-4"), float.fromhex("0x1.0ef2a49c7368ap-3"), float.fromhex("0x1.326d6e57286ddp-3"), float.fromhex("0x1.5a8d93ce0808ap-3"), float.fromhex("0x1.87eed300fc8a5p-3"), float.fromhex("0x1.bb414ec51c0f5p-3"), float.fromhex("0x1.f54c3a6adb9dbp-3"), float.fromhex("0x1.1b786f74de5e3p-2"), float.fromhex("0x1.409702a535c9ap-2"), float.fromhex("0x1.6a91e9c89d56cp-2"), float.fromhex("0x1.9a0c1593aad01p-2"), float.fromhex("0x1.cfbdccdbd0fffp-2"), float.fromhex("0x1.063bbbeb2d4acp-1"), float.fromhex("0x1.2892648008ebcp-1"), float.fromhex("0x1.4f6827f89ef2dp-1"), float.fromhex("0x1.7b53c1fe5f640p-1"), float.fromhex("0x1.acffab2504022p-1"), float.fromhex("0x1.e52cae93c93a7p-1"), float.fromhex("0x1.125a6b2984b35p+0"), float.fromhex("0x1.36475ccb55afbp+0"), float.fromhex("0x1.5ee89ced146b1p+0"), float.fromhex("0x1.8cdbdea888e8ep+0"), float.fromhex("0x1.c0d37b8ab3358p+0"), float.fromhex("0x1.fb9927d1a353bp+0"), float.fromhex("0x1.1f0880a7ea5aep+1"), float.fromhex("0x1.449e8269dd74dp+1"), float.fromhex("0x1.6f207bc00a470p+1"), float.fromhex("0x1.9f3369a1cdda2p+1"), float.fromhex("0x1.d591e3cdcd17bp+1"), float.fromhex("0x1.098778831f167p+2"), float.fromhex("0x1.2c4c9d119be27p+2"), float.fromhex("0x1.539f5433125c0p+2"), float.fromhex("0x1.80183e8ce30d6p+2"), float.fromhex("0x1.b263f9307e09fp+2"), float.fromhex("0x1.eb45bb958168dp+2"), float.fromhex("0x1.15cd26a77fc5ep+3"), float.fromhex("0x1.3a2daf7c6f9d7p+3"), float.fromhex("0x1.6351a9adb166ep+3"), float.fromhex("0x1.91d8c3bb36342p+3"), float.fromhex("0x1.c67795095324dp+3"), float.fromhex("0x1.00fd2d68f1c02p+4"), float.fromhex("0x1.22a4086f4b16bp+4"), float.fromhex("0x1.48b2f908a2936p+4"), float.fromhex("0x1.73bdb7290e9a7p+4"), float.fromhex("0x1.a46b52a1831a9p+4"), float.fromhex("0x1.db78bb8d88856p+4"), float.fromhex("0x1.0cddcfd4e0128p+5"), float.fromhex("0x1.3012d3d8c8760p+5"), float.fromhex("0x1.57e410ab88152p+5"), float.fromhex("0x1.84ec1206e02dfp+5"), float.fromhex("0x1.b7d9a05ebcc35p+5"), float.fromhex("0x1.f1726746fa605p+5"), float.fromhex("0x1.194afa574d0aap+6"), float.fromhex("0x1.3e208e4926182p+6"), float.fromhex("0x1.67c8e72716408p+6"), float.fromhex("0x1.96e5b537c6913p+6"), float.fromhex("0x1.cc2dd4ed373c8p+6"), float.fromhex("0x1.04380a5295179p+7"), float.fromhex("0x1.264b2bad059f6p+7"), float.fromhex("0x1.4cd49037f032ep+7"), float.fromhex("0x1.7869cb306242ap+7"), float.fromhex("0x1.a9b405ece99d7p+7"), float.fromhex("0x1.e17290719da81p+7")], dtype=np.float64)
SCALE_BOUNDS.setflags(write=False)


def scale_indices(scales: np.ndarray) -> np.ndarray:
    """Index of the table entry nearest (in log) to each scale; pure comparisons, so exact."""
    return np.searchsorted(SCALE_BOUNDS, np.asarray(scales, dtype=np.float64), side="right").astype(np.int32)
