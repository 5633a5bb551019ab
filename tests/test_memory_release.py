"""memory.py: the peak-memory figure the benchmarks report."""

from __future__ import annotations


def test_peak_rss_of_a_fresh_child_is_its_own():
    """Benchmarks run each measurement in a child: its peak must not be the parent's
    (Linux carries the parent's high-water mark into the child's ru_maxrss)."""
    import subprocess
    import sys

    from eligibility.memory import peak_rss_mib

    ballast = bytearray(400 * 2**20)
    ballast[::4096] = b"\x01" * len(ballast[::4096])  # touch every page: resident
    assert peak_rss_mib() >= 400
    out = subprocess.run([sys.executable, "-c", "from eligibility.memory import peak_rss_mib; print(peak_rss_mib())"],
                         capture_output=True, text=True, check=True).stdout
    assert float(out) < 200
    del ballast
