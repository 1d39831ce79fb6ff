#!/usr/bin/env python3
"""test_npz.py: the engine's .npz archives against NumPy and Python's zipfile, both ways.

Engine -> NumPy: BUILD/tests/tool_npz_write (BUILD = the folder of $MBPO_BIN, else
$MBPO_ROOT/build) writes a known archive (default compression, stored, every field in ZIP64 form,
70000 entries); numpy.load must open it and every array must equal what this script rebuilds, and
zipfile.testzip must find every CRC right.
NumPy / zipfile -> engine: numpy.savez_compressed, numpy.savez and hand-made zipfile archives (data
descriptors, a comment, ZIP64 extras, deflate levels 1 and 9, a bzip2 entry, dtypes the engine
does not read) are listed by BUILD/tests/tool_npz_read; names, dtypes, shapes and CRC-32 of the
data must match, unsupported entries must give a per-entry error, corrupt archives an error exit.
Prints "N passed, N failed, N skipped"; exits non-zero on failure.
"""
import io
import os
import shutil
import subprocess
import tempfile
import zipfile
import zlib

from testlib import case, check, done, skip_all

try:
    import numpy as np
except Exception as e:  # noqa: BLE001
    skip_all("test_npz", f"numpy not importable ({e.__class__.__name__}: {e})")


def expected_arrays():
    """The arrays tool_npz_write writes (see its header comment)."""
    i32 = np.array([i * i - 10 for i in range(5)] + [-(2**31), 2**31 - 1], np.int32)
    return {
        "f32_2d": (np.arange(12, dtype=np.float32) * np.float32(0.5) - np.float32(1.25)).reshape(3, 4),
        "i32_1d": i32,
        "u8_3d": ((np.arange(30) * 37) % 256).astype(np.uint8).reshape(2, 3, 5),
        "f64_scalar": np.array(3.141592653589793),
        "i64_empty": np.zeros((0, 3), np.int64),
        "f32_empty": np.zeros((0,), np.float32),
        "f32_8d": np.arange(16, dtype=np.float32).reshape(1, 2, 1, 2, 1, 2, 1, 2),
        "i64_edge": np.array([2**62, -(2**63), -1, 2**63 - 1], np.int64),
        "nested/name.with.dots": np.array([[1e300, -0.0], [np.inf, np.nan]]),
        "pool_obs": ((np.arange(11000) % 1000).astype(np.float32) * np.float32(0.25) - np.float32(100)).reshape(1000, 11),
    }


def same(a, b):
    return (a.dtype == b.dtype and a.shape == b.shape and
            a.tobytes() == b.tobytes())  # bitwise: -0.0 and NaN included


def engine_to_numpy(tool, tmp):
    exp = expected_arrays()
    for label, args in [("default", []), ("stored", ["--level", "0"]), ("level9", ["--level", "9"]),
                        ("zip64", ["--zip64"])]:
        with case(f"engine writes {label}"):
            engine_writes(tool, tmp, label, args, exp)
    engine_limits(tool, tmp)


def engine_writes(tool, tmp, label, args, exp):
    path = os.path.join(tmp, f"engine_{label}.npz")
    r = subprocess.run([tool, path] + args, capture_output=True, text=True)
    check(f"write {label}", r.returncode == 0, r.stderr.strip())
    if r.returncode != 0:
        return
    with np.load(path) as z:
        check(f"{label}: names in order", z.files == list(exp), f"{z.files}")
        for k, v in exp.items():
            check(f"{label}: {k}", k in z.files and same(z[k], v),
                  f"got {z[k].dtype} {z[k].shape}" if k in z.files else "missing")
    with zipfile.ZipFile(path) as zf:
        check(f"{label}: zipfile CRCs", zf.testzip() is None)
        infos = zf.infolist()
        want = zipfile.ZIP_STORED if label == "stored" else zipfile.ZIP_DEFLATED
        check(f"{label}: method", all(i.compress_type == want for i in infos),
              f"{[i.compress_type for i in infos]}")
        check(f"{label}: no data descriptors", all(not (i.flag_bits & 8) for i in infos))
    raw = open(path, "rb").read()
    if label == "zip64":
        check("zip64: ZIP64 end record and locator", b"PK\x06\x06" in raw and b"PK\x06\x07" in raw)
        with zipfile.ZipFile(path) as zf:
            check("zip64: every entry has a ZIP64 extra",
                  all(i.extra[:2] == b"\x01\x00" for i in zf.infolist()))
    else:
        check(f"{label}: no ZIP64 records", b"PK\x06\x06" not in raw)


def engine_limits(tool, tmp):
    with case("engine writes more than 65535 entries"):
        path = os.path.join(tmp, "engine_many.npz")
        r = subprocess.run([tool, path, "--many", "70000", "--level", "0"], capture_output=True, text=True)
        check("write many", r.returncode == 0, r.stderr.strip())
        if r.returncode == 0:
            with np.load(path) as z:
                check("many: 70000 entries", len(z.files) == 70000, f"{len(z.files)}")
                for k in (0, 65535, 69999):
                    name = f"e{k:05d}"
                    check(f"many: {name}", same(z[name], np.array([k, -k], np.int32)))
    with case("engine writer refuses bad arguments"):
        r = subprocess.run([tool, os.path.join(tmp, "x.npz"), "--level", "12"], capture_output=True, text=True)
        check("bad level refused", r.returncode != 0 and r.returncode > 0, f"exit {r.returncode}")
        r = subprocess.run([tool, os.path.join(tmp, "no", "such", "dir", "x.npz")], capture_output=True, text=True)
        check("missing folder refused", r.returncode == 1 and "cannot create" in r.stderr, r.stderr.strip())


DTYPE = {np.dtype("<f4"): "f4", np.dtype("<i4"): "i4", np.dtype("|u1"): "u1", np.dtype("<f8"): "f8",
         np.dtype("<i8"): "i8"}


def listing(tool, path):
    r = subprocess.run([tool, path], capture_output=True, text=True)
    lines = r.stdout.splitlines()
    out = {}
    for ln in lines[1:]:
        parts = ln.split("\t")
        out[parts[0]] = parts[1:]
    return r.returncode, lines[0] if lines else "", out


def compare_listing(label, tool, path, arrays, unsupported=()):
    rc, head, got = listing(tool, path)
    check(f"{label}: opens", rc == 0, f"exit {rc}: {head}")
    if rc != 0:
        return
    check(f"{label}: count", head == f"count {len(arrays) + len(unsupported)}", head)
    for k, v in arrays.items():
        v = np.array(v, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
        want = [DTYPE[v.dtype], ",".join(str(d) for d in v.shape), f"{zlib.crc32(v.tobytes()):08x}"]
        check(f"{label}: {k}", got.get(k) == want, f"got {got.get(k)}, want {want}")
    for k in unsupported:
        check(f"{label}: {k} refused", k in got and got[k][0] == "error", f"got {got.get(k)}")


def numpy_to_engine(tool, tmp):
    rng = np.random.default_rng(7)
    arrays = {
        "f32": rng.standard_normal((64, 17)).astype(np.float32),
        "f64": rng.standard_normal(1000),
        "i32": rng.integers(-2**31, 2**31, 333, dtype=np.int32),
        "i64": rng.integers(-2**63, 2**63 - 1, (4, 5), dtype=np.int64),
        "u8": rng.integers(0, 256, (3, 3, 3), dtype=np.uint8),
        "scalar": np.array(2.5),
        "empty": np.zeros((0, 4), np.float32),
        "eight_d": np.arange(2 * 3 * 1 * 2 * 1 * 2 * 1 * 2, dtype=np.int32).reshape(2, 3, 1, 2, 1, 2, 1, 2),
        "zeros": np.zeros(200000, np.float32),
        "sub/dir.name": np.ones(3, np.float64),
    }
    unsupported = {
        "bool": np.array([True, False]),
        "big_endian": np.arange(4, dtype=">f4"),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
        "int16": np.arange(4, dtype=np.int16),
    }
    for label, save in [("savez_compressed", np.savez_compressed), ("savez", np.savez)]:
        with case(f"engine reads numpy {label}"):
            path = os.path.join(tmp, f"numpy_{label}.npz")
            save(path, **arrays, **unsupported)
            compare_listing(label, tool, path, arrays, unsupported)

    def npy_bytes(v):
        b = io.BytesIO()
        np.save(b, v)
        return b.getvalue()

    # zipfile by hand: data descriptors (an unseekable stream), a comment, levels 1 and 9
    class Unseekable(io.RawIOBase):
        def __init__(self, f):
            self.f = f

        def writable(self):
            return True

        def write(self, b):
            return self.f.write(b)

    with case("engine reads data descriptors and a comment"):
        path = os.path.join(tmp, "descriptors.npz")
        with open(path, "wb") as f:
            with zipfile.ZipFile(Unseekable(f), "w", zipfile.ZIP_DEFLATED) as zf:
                for k, v in arrays.items():
                    zf.writestr(k + ".npy", npy_bytes(v))
                zf.comment = b"written through an unseekable stream"
        with zipfile.ZipFile(path) as zf:
            check("descriptors: flag bit 3 set", all(i.flag_bits & 8 for i in zf.infolist()))
        compare_listing("descriptors", tool, path, arrays)

    with case("engine reads zipfile levels 1 and 9"):
        for level in (1, 9):
            path = os.path.join(tmp, f"level{level}.npz")
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
                for k, v in arrays.items():
                    zf.writestr(k + ".npy", npy_bytes(v))
            compare_listing(f"zipfile level {level}", tool, path, arrays)

    # ZIP64 local extras (force_zip64) and a bzip2 entry (method 12: refused per entry)
    with case("engine reads ZIP64 local extras, refuses a bzip2 entry"):
        path = os.path.join(tmp, "force64.npz")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for k, v in arrays.items():
                with zf.open(k + ".npy", "w", force_zip64=True) as w:
                    w.write(npy_bytes(v))
            zf.writestr(zipfile.ZipInfo("bz.npy"), npy_bytes(np.ones(3)), compress_type=zipfile.ZIP_BZIP2)
        compare_listing("force_zip64 + bzip2", tool, path, arrays, ["bz"])
        rc, head, got = listing(tool, path)
        check("bzip2 error names the method", "method 12" in (got.get("bz") or ["", ""])[1], f"{got.get('bz')}")

    # corrupt archives: an error exit (1), never a crash (negative return code = signal)
    good = open(os.path.join(tmp, "numpy_savez_compressed.npz"), "rb").read()
    bad = {
        "truncated": good[: len(good) // 2],
        "no end record": good[:-22],
        "empty": b"",
        "text": b"not a zip at all" * 10,
    }
    with case("engine refuses corrupt archives"):
        for k, b in bad.items():
            p = os.path.join(tmp, "bad.npz")
            open(p, "wb").write(b)
            r = subprocess.run([tool, p], capture_output=True, text=True)
            check(f"corrupt ({k}): error exit", r.returncode == 1 and r.stdout.startswith("error:"),
                  f"exit {r.returncode}: {r.stdout.strip()[:200]}")
    # a flipped data byte: the archive opens, that entry fails its CRC, the others read
    with case("engine refuses a flipped data byte, reads the other entries"):
        flipped(tool, tmp, good)


def flipped(tool, tmp, good):
    b = bytearray(good)
    with zipfile.ZipFile(io.BytesIO(good)) as zf:
        info = zf.getinfo("zeros.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    b[start + info.compress_size // 2] ^= 0x55
    p = os.path.join(tmp, "flipped.npz")
    open(p, "wb").write(bytes(b))
    rc, head, got = listing(tool, p)
    check("flipped data: opens", rc == 0, head)
    check("flipped data: entry refused", (got.get("zeros") or [""])[0] == "error", f"{got.get('zeros')}")
    check("flipped data: others read", (got.get("f32") or [""])[0] == "f4", f"{got.get('f32')}")


def main():
    root = os.environ.get("MBPO_ROOT", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    build = os.path.dirname(os.environ["MBPO_BIN"]) if os.environ.get("MBPO_BIN") else os.path.join(root, "build")
    write = os.path.join(build, "tests", "tool_npz_write")
    read = os.path.join(build, "tests", "tool_npz_read")
    for t in (write, read):
        if not os.path.exists(t):
            check("tools", False, f"{t} not found (build first: make CUDA=0)")
            done()
    tmp = tempfile.mkdtemp(prefix="mbpo_npz_")
    try:
        engine_to_numpy(write, tmp)
        numpy_to_engine(read, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    done()


if __name__ == "__main__":
    main()
