#!/usr/bin/env python3
"""Generates llama.cpp reference data for the IQ / ternary / MXFP4 codecs of aether.runtime.quant.

It calls the real ggml library (libggml-base.so) through ctypes. The library comes from the npm package
@node-llama-cpp/linux-x64 (prebuilt llama.cpp binaries, see shared/STACK.md):

    cd /tmp && npm pack @node-llama-cpp/linux-x64@3.22.1 && tar xzf node-llama-cpp-linux-x64-3.22.1.tgz
    python3 scripts/ggml_iq_reference.py /tmp/package/bins/linux-x64/libggml-base.so

Outputs (overwritten):
  runtime-actors/src/main/resources/aether/runtime/quant/iq-grids.bin
      the dequantization grids, recovered exactly by dequantizing blocks that enumerate every grid index with a
      unit scale and no signs (layout: see IqGrids.java)
  runtime-actors/src/test/resources/aether/runtime/quant/ggml-ref/ (README.md there describes the files)
  runtime-actors/src/test/resources/aether/runtime/quant/ggml-ref/<type>.blocks.bin / <type>.f32.bin
      random blocks (finite f16 scales) and ggml's dequantize_row_<type> of them
  runtime-actors/src/test/resources/aether/runtime/quant/ggml-ref/<type>.src.f32.bin / <type>.quant.bin
      random rows (plus special blocks) and ggml's quantize_<type> of them (no imatrix) for the types Aether
      quantizes
"""
import ctypes
import os
import random
import struct
import sys

lib = ctypes.CDLL(sys.argv[1])
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "runtime-actors", "src")
ref_dir = os.path.join(root, "test", "resources", "aether", "runtime", "quant", "ggml-ref")
grid_file = os.path.join(root, "main", "resources", "aether", "runtime", "quant", "iq-grids.bin")
os.makedirs(ref_dir, exist_ok=True)
os.makedirs(os.path.dirname(grid_file), exist_ok=True)

# type: (block bytes, block elements)
TYPES = {
    "iq2_xxs": (66, 256), "iq2_xs": (74, 256), "iq2_s": (82, 256), "iq3_xxs": (98, 256), "iq3_s": (110, 256),
    "iq1_s": (50, 256), "iq1_m": (56, 256), "iq4_nl": (18, 32), "iq4_xs": (136, 256), "tq1_0": (54, 256),
    "tq2_0": (66, 256), "mxfp4": (17, 32),
}
# offsets of ggml_half fields that must stay finite in random blocks
HALF_OFFSETS = {
    "iq2_xxs": [0], "iq2_xs": [0], "iq2_s": [0], "iq3_xxs": [0], "iq3_s": [0], "iq1_s": [0], "iq4_nl": [0],
    "iq4_xs": [0], "tq1_0": [52], "tq2_0": [64], "mxfp4": [], "iq1_m": [],
}


def dequant(name, blob):
    nbytes, qk = TYPES[name]
    n = len(blob) // nbytes * qk
    out = (ctypes.c_float * n)()
    fn = getattr(lib, "dequantize_row_" + name)
    fn.restype = None
    fn(ctypes.c_char_p(bytes(blob)), out, ctypes.c_int64(n))
    return list(out), bytes(out)


def finite_half(h):
    return (h >> 10) & 0x1F != 0x1F


def random_block(rng, name):
    nbytes, _ = TYPES[name]
    while True:
        b = bytearray(rng.getrandbits(8) for _ in range(nbytes))
        for off in HALF_OFFSETS[name]:
            # scale in a moderate range: sign random, exponent 5..25, mantissa random
            h = (rng.getrandbits(1) << 15) | (rng.randint(5, 25) << 10) | rng.getrandbits(10)
            b[off:off + 2] = struct.pack("<H", h)
        if name == "iq1_m":
            sc = struct.unpack_from("<4H", b, 48)
            h = (sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) | ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000)
            if not finite_half(h):
                continue
        return b


# ---------------------------------------------------------------- grids
ONE = struct.pack("<H", 0x3C00)


def grid_iq2(name, nbytes, count, per_block, put_index, factor):
    values = []
    for first in range(0, count, per_block):
        b = bytearray(nbytes)
        b[0:2] = ONE
        for k in range(per_block):
            put_index(b, k, first + k)
        y, _ = dequant(name, b)
        for k in range(per_block):
            values.append([round(v * factor) for v in y[8 * k:8 * k + 8]])
    return values


def put_iq2xxs(b, k, idx):  # k = 4*ib32 + l, index byte l of the first uint32 of group ib32
    b[2 + 8 * (k // 4) + (k % 4)] = idx


def put_iq2xs(b, k, idx):  # uint16 qs[k] = index (signs 0)
    struct.pack_into("<H", b, 2 + 2 * k, idx)


def put_iq2s(b, k, idx):  # qs[k] low 8 bits, qh[ib32] bits 2l..2l+1
    ib32, l = divmod(k, 4)
    b[2 + k] = idx & 255
    b[66 + ib32] |= (idx >> 8) << (2 * l)


def put_iq1s(b, k, idx):  # qs[k] low 8 bits, qh[ib] bits 3l..3l+2 (scale 0 -> dl = 1, delta +1/8)
    ib, l = divmod(k, 4)
    b[2 + k] = idx & 255
    qh = struct.unpack_from("<H", b, 34 + 2 * ib)[0] | ((idx >> 8) << (3 * l))
    struct.pack_into("<H", b, 34 + 2 * ib, qh)


iq2xxs = grid_iq2("iq2_xxs", 66, 256, 32, put_iq2xxs, 8)          # db = 0.125
iq2xs = grid_iq2("iq2_xs", 74, 512, 32, put_iq2xs, 8)
iq2s = grid_iq2("iq2_s", 82, 1024, 32, put_iq2s, 8)
iq1s = []
for first in range(0, 2048, 32):
    b = bytearray(50)
    b[0:2] = ONE
    for k in range(32):
        put_iq1s(b, k, first + k)
    y, _ = dequant("iq1_s", b)
    for k in range(32):
        iq1s.append([round(v - 0.125) for v in y[8 * k:8 * k + 8]])

# iq3: 4-value grids. iq3_xxs: db = 0.5 * 0.5 = 0.25; qs[8*ib32 + 2l + {0,1}] are the two indices of group l
iq3xxs = []
for first in range(0, 256, 64):
    b = bytearray(98)
    b[0:2] = ONE
    for k in range(64):
        b[2 + k] = first + k
    y, _ = dequant("iq3_xxs", b)
    for k in range(64):
        iq3xxs.append([round(v * 4) for v in y[4 * k:4 * k + 4]])
# iq3_s: db = 1; qs[k] low 8 bits, 9th bit of qs index 8*p + m (p = 0..7 pair of 32-groups) in qh[p] bit m
iq3s = []
for first in range(0, 512, 64):
    b = bytearray(110)
    b[0:2] = ONE
    for k in range(64):
        idx = first + k
        b[2 + k] = idx & 255
        b[66 + k // 8] |= (idx >> 8) << (k % 8)
    y, _ = dequant("iq3_s", b)
    for k in range(64):
        iq3s.append([round(v) for v in y[4 * k:4 * k + 4]])

with open(grid_file, "wb") as f:
    for table in (iq2xxs, iq2xs, iq2s, iq1s, iq3xxs, iq3s):
        for entry in table:
            f.write(struct.pack("<%db" % len(entry), *entry) if table is iq1s else bytes(entry))
print("grids:", len(iq2xxs), len(iq2xs), len(iq2s), len(iq1s), len(iq3xxs), len(iq3s), "->", grid_file)

# ---------------------------------------------------------------- random blocks
rng = random.Random(20261122)
for name, (nbytes, qk) in TYPES.items():
    nblocks = 48 if qk == 256 else 384
    blob = b"".join(random_block(rng, name) for _ in range(nblocks))
    _, out = dequant(name, blob)
    open(os.path.join(ref_dir, name + ".blocks.bin"), "wb").write(blob)
    open(os.path.join(ref_dir, name + ".f32.bin"), "wb").write(out)

# ---------------------------------------------------------------- quantizers (no imatrix)
for name, fn_name in (("iq4_nl", "quantize_iq4_nl"), ("iq4_xs", "quantize_iq4_xs"),
                      ("tq1_0", "quantize_tq1_0"), ("tq2_0", "quantize_tq2_0"), ("mxfp4", "quantize_mxfp4")):
    nbytes, qk = TYPES[name]
    nrow, n_per_row = 16, 512
    vals = []
    for r in range(nrow):
        scale = 10 ** rng.uniform(-3, 2)
        vals.extend(rng.gauss(0, scale) if rng.random() > 0.01 else rng.gauss(0, 12 * scale) for _ in range(n_per_row))
    for i in range(0, 256):  # an all-zero first block
        vals[i] = 0.0
    # block maxima just below / at powers of two (the E8M0 exponent of MXFP4 comes from floor(log2f(amax)))
    for blk, amax in enumerate((0.99999994, 1.0, 3.9999998, 4.0, 7.9999995, 8.0, 0.24999999, 1e-39, 3e-30, 6e4)):
        base = 512 + 32 * blk
        for i in range(32):
            vals[base + i] = amax * (i - 16) / 16.0
        vals[base] = -amax
    src = (ctypes.c_float * len(vals))(*vals)
    dst = ctypes.create_string_buffer(nrow * n_per_row // qk * nbytes)
    fn = getattr(lib, fn_name)
    fn.restype = ctypes.c_size_t
    size = fn(src, dst, ctypes.c_int64(nrow), ctypes.c_int64(n_per_row), None)
    assert size == len(dst.raw), (size, len(dst.raw))
    open(os.path.join(ref_dir, name + ".src.f32.bin"), "wb").write(bytes(src))
    open(os.path.join(ref_dir, name + ".quant.bin"), "wb").write(dst.raw)
print("reference data ->", ref_dir)
