"""DexLite: dexterous-grasp synthesis for the Shadow Hand (see README.md)."""
import os

# GNU OpenMP's threads (torch's CPU kernels) wait by spinning, which stalls a parallel region
# whenever another process holds a core: with one of two cores busy, seed optimization ran 2.5x
# (one busy process) to 14x (two) slower than with passive waiting, with identical results
# (bench/README.md, "Reproducibility"). Read when torch loads libgomp, so set before any torch
# import; a value the user sets wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
