"""Odd 64-bit constants (from splitmix64) for multiplicative hashing of 64-bit words: the
top bits of word × constant (wrapping modulo 2**64) spread the words evenly. Every hash made
with them is checked by its caller, which falls back to an exact method on a clash."""

from __future__ import annotations

import numpy as np

MIX64 = tuple(np.uint64(m) for m in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB,
                                     0xD6E8FEB86659FD93, 0xA0761D6478BD642F, 0xE7037ED1A0B428DB))
