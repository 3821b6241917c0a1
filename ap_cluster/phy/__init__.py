"""The IQ data plane (issue 18): a burst OFDM PHY whose flowgraphs are GNU Radio Companion files.

A transport block (its bytes, whitened, with a CRC-32) is coded with gr-fec's K=7 rate-1/2
convolutional code (punctured to 2/3 or 3/4), mapped to QPSK, 16-QAM or 64-QAM
(:mod:`ap_cluster.phy.mcs`) and sent as one OFDM burst: a Schmidl-Cox preamble (two symbols),
a BPSK header (length, number, CRC-8), then the payload on 48 data and 4 pilot subcarriers of a
64-point FFT. The receiver detects the burst, corrects the carrier offset, estimates the
channel per subcarrier from the preamble, removes each symbol's common phase with the pilots
(:mod:`ap_cluster.phy.tracker`), demaps softly, Viterbi-decodes and checks the CRC: a block
that decodes is bit-exact, one that does not is dropped. The flowgraphs are
``flowgraphs/phy_tx.grc`` and ``flowgraphs/phy_rx.grc`` (hier blocks), compiled by ``grcc``
and run by :mod:`ap_cluster.phy.modem`.
"""
