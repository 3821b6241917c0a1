"""The PHY's modulation and coding schemes: gr-fec's convolutional code at three rates.

The code is the K=7, rate-1/2 convolutional code with generators 133 and 171 (octal; gr-fec's
``cc_encoder`` with polynomials 109 and 79), tail-biting, punctured with the patterns of IEEE
802.11a (section 17.3.5.6): rate 2/3 keeps 3 of 4 coded bits, rate 3/4 keeps 4 of 6. The six
schemes are 802.11a's from QPSK up (its BPSK rows left out). Modulations are Gray-mapped square
QAM with unit mean power (:func:`flowgraphs.phy_layout.gray_qam`).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

__all__ = ["CRC_BYTES", "MCS_TABLE", "TB_BYTES", "Mcs"]

#: Bytes of a transport block's payload; with the CRC, ``TB_BYTES + CRC_BYTES`` is a multiple
#: of 9, so the coded bits of every scheme fill whole bytes and whole QAM symbols.
TB_BYTES = 500
#: The CRC-32 appended to each block.
CRC_BYTES = 4


@dataclass(frozen=True)
class Mcs:
    """One scheme: ``index``, ``modulation``, bits per symbol, code rate and its puncturing
    pattern (gr-fec's ``puncpat``: 1 keeps a coded bit)."""

    index: int
    modulation: str
    bits_per_symbol: int
    code_rate: Fraction
    puncpat: str

    @property
    def bits_per_subcarrier(self) -> float:
        """Information bits per data subcarrier and OFDM symbol."""
        return float(self.bits_per_symbol * self.code_rate)

    def coded_bits(self, info_bytes: int) -> int:
        """Coded bits of a block of ``info_bytes`` (CRC included)."""
        return int(Fraction(16 * info_bytes) * Fraction(self.puncpat.count("1"), len(self.puncpat)))


MCS_TABLE: tuple[Mcs, ...] = (
    Mcs(0, "QPSK", 2, Fraction(1, 2), "11"),
    Mcs(1, "QPSK", 2, Fraction(3, 4), "110110"),
    Mcs(2, "16QAM", 4, Fraction(1, 2), "11"),
    Mcs(3, "16QAM", 4, Fraction(3, 4), "110110"),
    Mcs(4, "64QAM", 6, Fraction(2, 3), "1110"),
    Mcs(5, "64QAM", 6, Fraction(3, 4), "110110"),
)
