"""gooddetect: out-of-distribution detection for DNA reads with likelihood ratios (Ren et al. 2019)."""

__version__ = "0.3.0"
