#!/usr/bin/python3
"""Which BLAS PyTorch's own matrix products run on.

    /usr/bin/python3 bench/torch_blas.py     # the library's file, or "none"

Debian's python3-torch links libblas.so.3, which is whichever BLAS
update-alternatives picked: libblas3's reference BLAS unless a tuned one
(OpenBLAS, BLIS) is installed beside it. That matters to both scripts
that run PyTorch here. At batch 1 PyTorch 1.13 sends a 3x3 convolution
with at most 20480 input values to its own im2col path rather than
oneDNN, and that path's product is the BLAS's sgemm_: on the reference
BLAS, W1's batch-1 step took 4.8 ms against 0.93 ms on OpenBLAS
(compare.py's ratios then flatter heed), and PyTorch's sums round
otherwise (torch_agree.py's lines move, within their bounds).
"""

import ctypes
import importlib
import os

# (substring of the library's path, name), first match wins.
TUNED = (("openblas", "OpenBLAS"), ("blis", "BLIS"), ("mkl", "MKL"), ("atlas", "ATLAS"))


class _DlInfo(ctypes.Structure):
    _fields_ = [("fname", ctypes.c_char_p), ("fbase", ctypes.c_void_p),
                ("sname", ctypes.c_char_p), ("saddr", ctypes.c_void_p)]


def sgemm_library():
    """The file that torch's own calls of sgemm_ resolve to (dlsym through
    libtorch_cpu.so and the libraries it loaded, then dladdr), or None.
    Imports torch."""
    importlib.import_module("torch")  # maps libtorch_cpu.so and its BLAS
    with open("/proc/self/maps") as maps:
        lib = next((f[5] for f in map(str.split, maps)
                    if len(f) >= 6 and os.path.basename(f[5]).startswith("libtorch_cpu.so")), None)
    if lib is None:
        return None
    try:
        addr = ctypes.cast(ctypes.CDLL(lib).sgemm_, ctypes.c_void_p).value
        info = _DlInfo()
        if not ctypes.CDLL("libc.so.6").dladdr(ctypes.c_void_p(addr), ctypes.byref(info)):
            return None
        return os.path.realpath(info.fname.decode())
    except (AttributeError, OSError, TypeError):
        return None


def describe(path):
    """(name, is_reference) for sgemm_library()'s answer."""
    low = (path or "").lower()
    for key, name in TUNED:
        if key in low:
            return name, False
    if "/blas/libblas.so" in low:
        return "the reference BLAS (libblas3)", True
    return (f"the BLAS in {path}" if path else "an unknown BLAS"), False


if __name__ == "__main__":
    print(sgemm_library() or "none")
