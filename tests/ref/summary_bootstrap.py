#!/usr/bin/env python3
"""summary_bootstrap.py: an independent implementation of `mbpo summary`'s bootstrap interval of
the IQM (include/summary.h), the source of the golden values in tests/test_summary.c, which runs it.

Usage: summary_bootstrap.py NBOOT X1 X2 ... -> prints "ci_lo ci_hi" (%.10g), the 95 % percentile
bootstrap interval of the interquartile mean of the runs' values X1..Xn (in the runs' order):
  - resample b (0 <= b < NBOOT) takes run i as x[index], index = (w * n) >> 32, w = word i of the
    Philox4x32-10 stream with key (0x53554D4D "SUMM", 0x424F4F54 "BOOT"), counter (b, 0, hi, lo)
    where (hi, lo) = i >> 2 and the word is lane i & 3 (Salmon et al. 2011; include/rng.h);
  - IQM = scipy.stats.trim_mean(x, 0.25): sort, drop int(0.25 n) values from each end, average;
  - the 2.5th and 97.5th percentiles of the NBOOT IQMs, linear between order statistics
    (numpy.percentile's default method; numpy computes them when it is importable).
Pure Python otherwise; written from the definitions above, not from the C code.
"""
import sys

M32 = 0xFFFFFFFF


def philox4x32_10(k0, k1, c):
    c0, c1, c2, c3 = c
    for _ in range(10):
        p0 = 0xD2511F53 * c0
        p1 = 0xCD9E8D57 * c2
        hi0, lo0 = p0 >> 32, p0 & M32
        hi1, lo1 = p1 >> 32, p1 & M32
        c0, c1, c2, c3 = (hi1 ^ c1 ^ k0) & M32, lo1, (hi0 ^ c3 ^ k1) & M32, lo0
        k0 = (k0 + 0x9E3779B9) & M32
        k1 = (k1 + 0xBB67AE85) & M32
    return c0, c1, c2, c3


def word(key, c0, c1, n):
    block = n >> 2
    return philox4x32_10(key[0], key[1], (c0, c1, block >> 32, block & M32))[n & 3]


def trim_mean(x, prop=0.25):
    s = sorted(x)
    cut = int(prop * len(s))
    kept = s[cut:len(s) - cut]
    return sum(kept) / len(kept)


def percentile(sorted_a, q):
    pos = q / 100 * (len(sorted_a) - 1)
    i = int(pos)
    if i >= len(sorted_a) - 1:
        return sorted_a[-1]
    return sorted_a[i] + (pos - i) * (sorted_a[i + 1] - sorted_a[i])


def interval(x, nboot):
    key = (0x53554D4D, 0x424F4F54)
    n = len(x)
    boot = sorted(trim_mean([x[(word(key, b, 0, i) * n) >> 32] for i in range(n)]) for b in range(nboot))
    lo, hi = percentile(boot, 2.5), percentile(boot, 97.5)
    try:
        import numpy as np  # noqa: PLC0415
        lo, hi = (float(v) for v in np.percentile(np.array(boot), [2.5, 97.5]))
    except ImportError:
        pass
    return lo, hi


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: summary_bootstrap.py NBOOT X1 X2 ...")
    # Philox4x32-10 known answer (Random123's kat_vectors: counter and key all ones)
    assert philox4x32_10(M32, M32, (M32,) * 4) == (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)
    lo, hi = interval([float(v) for v in sys.argv[2:]], int(sys.argv[1]))
    print(f"{lo:.10g} {hi:.10g}")


if __name__ == "__main__":
    main()
