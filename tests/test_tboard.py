#!/usr/bin/env python3
"""test_tboard.py: a TensorBoard event file written by the engine (host/tboard.c) read by Python.

BUILD/tests/tool_tboard_write (BUILD = the folder of $MBPO_BIN, else $MBPO_ROOT/build) writes a known
file (its contents are listed in tests/tool_tboard_write.c and rebuilt in expected() here). Then:
  - always: a small pure-Python reader (CRC-32C, TFRecord framing, the Event protobuf) checks every
    record's CRCs and every field: wall_time, step, file_version, tags and float32 values;
  - TensorBoard's own EventAccumulator loads the folder and its scalars must equal the expected
    values. TensorBoard is a test dependency only: when this Python cannot import it, the test uses
    a throwaway virtual environment, BUILD/venv-tensorboard (MBPO_TB_VENV names another folder),
    made on first use with `python3 -m venv` and `pip install tensorboard` from PyPI (about 15 s);
    MBPO_TB_VENV=0, or an install that fails (offline), makes that case a skip that says why.
Prints "N passed, N failed, N skipped" (one per behaviour, tests/testlib.py); exits non-zero on
failure.
"""
import importlib
import json
import math
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import case, check, done, skip  # noqa: E402


# ---- the pure-Python reader ----------------------------------------------------------------------

def _crc_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


CRC_TABLE = _crc_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(b, i):
    v = shift = 0
    while True:
        if i >= len(b) or shift > 63:
            raise ValueError("bad varint")
        x = b[i]
        i += 1
        v |= (x & 0x7F) << shift
        shift += 7
        if not x & 0x80:
            return v, i


def fields(b):
    """Yield (field number, wire type, value) of a protobuf message."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 1:
            if i + 8 > len(b):
                raise ValueError("truncated fixed64")
            v, i = b[i:i + 8], i + 8
        elif wt == 5:
            if i + 4 > len(b):
                raise ValueError("truncated fixed32")
            v, i = b[i:i + 4], i + 4
        elif wt == 2:
            n, i = varint(b, i)
            if i + n > len(b):
                raise ValueError("truncated bytes")
            v, i = b[i:i + n], i + n
        else:
            raise ValueError(f"wire type {wt}")
        yield num, wt, v


def parse_event(b):
    ev = {"wall_time": None, "step": 0, "file_version": None, "values": []}
    for num, wt, v in fields(b):
        if (num, wt) == (1, 1):
            ev["wall_time"] = struct.unpack("<d", v)[0]
        elif (num, wt) == (2, 0):
            ev["step"] = v - (1 << 64) if v >= 1 << 63 else v
        elif (num, wt) == (3, 2):
            ev["file_version"] = v.decode()
        elif (num, wt) == (5, 2):
            for snum, swt, sv in fields(v):
                if (snum, swt) != (1, 2):
                    raise ValueError(f"Summary field {snum}/{swt}")
                tag = val = None
                for vnum, vwt, vv in fields(sv):
                    if (vnum, vwt) == (1, 2):
                        tag = vv.decode("utf-8")
                    elif (vnum, vwt) == (2, 5):
                        val = struct.unpack("<f", vv)[0]
                    else:
                        raise ValueError(f"Value field {vnum}/{vwt}")
                if tag is None or val is None:
                    raise ValueError("Value without tag or simple_value")
                ev["values"].append((tag, val))
        else:
            raise ValueError(f"Event field {num}/{wt}")
    if ev["wall_time"] is None:
        raise ValueError("Event without wall_time")
    return ev


def read_records(path):
    with open(path, "rb") as f:
        b = f.read()
    out, i = [], 0
    while i < len(b):
        if i + 12 > len(b):
            raise ValueError(f"truncated header at {i}")
        n = struct.unpack("<Q", b[i:i + 8])[0]
        if struct.unpack("<I", b[i + 8:i + 12])[0] != masked(b[i:i + 8]):
            raise ValueError(f"bad length CRC at {i}")
        if i + 12 + n + 4 > len(b):
            raise ValueError(f"truncated record at {i}")
        data = b[i + 12:i + 12 + n]
        if struct.unpack("<I", b[i + 12 + n:i + 16 + n])[0] != masked(data):
            raise ValueError(f"bad data CRC at {i}")
        out.append(parse_event(data))
        i += 16 + n
    return out


# ---- what tool_tboard_write writes ---------------------------------------------------------------

def f32(x):
    if math.isfinite(x) and abs(x) > 3.4028234663852886e38:
        return math.copysign(math.inf, x)
    return struct.unpack("<f", struct.pack("<f", x))[0]


def expected():
    """[(step, wall_time, [(tag, float32 value)])] in file order (after the file_version record)."""
    t0 = 1700000000.25
    ev = [(-5, t0 - 5, [("neg/step", -1.0)])]
    for s in range(100):
        ev.append((s, t0 + s, [("loss/model", f32(1.0 / (s + 1))), ("eval/return", f32(float(s * s) - 50.5)),
                               ("alpha", f32(0.1 * s))]))
    ev.append((100, t0 + 100, [("single", 3.25)]))
    ev.append((101, t0 + 101, [("special/inf", math.inf), ("special/ninf", -math.inf), ("special/nan", math.nan),
                               ("special/big", f32(1e300)), ("special/tiny", f32(1e-50))]))
    ev.append((102, t0 + 102, [("long/" + "x" * 200, 42.0), ("unicode/\u00e9", 2.0)]))
    return ev


def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


# ---- the checks ---------------------------------------------------------------------------------

def check_pure(path, want):
    try:
        evs = read_records(path)
    except (ValueError, UnicodeDecodeError) as e:
        check("pure reader: framing and CRCs", False, f"{path}: {e}")
        return
    check("record count", len(evs) == 1 + len(want), f"{len(evs)} records, want {1 + len(want)}")
    if not evs:
        return
    first = evs[0]
    check("first record", first["file_version"] == "brain.Event:2" and not first["values"] and first["step"] == 0
          and abs(first["wall_time"] - time.time()) < 600, f"{first}")
    bad = []
    for got, (step, wall, vals) in zip(evs[1:], want):
        ok = (got["step"] == step and got["wall_time"] == wall and got["file_version"] is None
              and len(got["values"]) == len(vals)
              and all(t == wt and same(v, wv) for (t, v), (wt, wv) in zip(got["values"], vals)))
        if not ok:
            bad.append(f"step {step}: got {got}")
    check("pure reader: every event", not bad, "; ".join(bad[:3]))


# TensorBoard's reader, run by whichever Python has it: prints the folder's scalars as JSON.
TB_READ = r"""
import json, sys
from tensorboard.backend.event_processing import event_accumulator as ea
acc = ea.EventAccumulator(sys.argv[1], size_guidance={ea.SCALARS: 0})
acc.Reload()
tags = acc.Tags().get("scalars", [])
print(json.dumps({"file_version": getattr(acc, "file_version", None),
                  "scalars": {t: [(e.step, e.wall_time, e.value) for e in acc.Scalars(t)] for t in tags}}))
"""


def tensorboard_python(build):
    """A Python that imports tensorboard (this one, else the throwaway venv, made when missing), or
    (None, why)."""
    try:
        importlib.import_module("tensorboard.backend.event_processing.event_accumulator")
        return sys.executable, None
    except ImportError as e:
        why_here = f"{e.__class__.__name__}: {e}"
    venv = os.environ.get("MBPO_TB_VENV") or os.path.join(build, "venv-tensorboard")
    if venv == "0":
        return None, f"tensorboard not importable ({why_here}) and MBPO_TB_VENV=0"
    py = os.path.join(venv, "bin", "python")
    probe = [py, "-c", "import tensorboard.backend.event_processing.event_accumulator"]
    if os.path.exists(py) and subprocess.run(probe, capture_output=True).returncode == 0:
        return py, None
    try:
        for cmd in ([sys.executable, "-m", "venv", venv],
                    [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "tensorboard"]):
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                return None, f"`{' '.join(cmd)}` failed: {(r.stderr or r.stdout).strip()[-300:]}"
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"cannot make the tensorboard venv {venv}: {e}"
    if subprocess.run(probe, capture_output=True).returncode != 0:
        return None, f"tensorboard installed in {venv} but not importable"
    return py, None


def check_tensorboard(build, folder, want):
    series = {}
    for step, wall, vals in want:
        for tag, v in vals:
            series.setdefault(tag, []).append((step, wall, v))
    py, why = tensorboard_python(build)
    if py is None:
        skip(why)
    r = subprocess.run([py, "-c", TB_READ, folder], capture_output=True, text=True, timeout=300)
    check("EventAccumulator loads the folder", r.returncode == 0, r.stderr.strip()[-2000:])
    if r.returncode != 0:
        return
    got_all = json.loads(r.stdout)
    got_s = got_all["scalars"]
    tags = sorted(got_s)
    check("tensorboard: tags", tags == sorted(series), f"{tags}")
    fv = got_all["file_version"]
    check("tensorboard: file_version", fv is None or fv == 2.0, f"{fv}")
    bad = []
    for tag, pts in series.items():
        got = got_s.get(tag, [])
        if len(got) != len(pts) or not all(gs == s and gw == w and same(gv, v)
                                           for (gs, gw, gv), (s, w, v) in zip(got, pts)):
            bad.append(f"{tag}: {got[:3]} want {pts[:3]}")
    check("tensorboard: EventAccumulator scalars", not bad, "; ".join(bad[:3]))


def main():
    with case("python crc32c known answers"):
        # the reader's CRC-32C: the standard check value and RFC 3720 B.4
        check("python crc32c", crc32c(b"123456789") == 0xE3069283 and crc32c(bytes(32)) == 0x8A9136AA
              and crc32c(bytes(range(32))) == 0x46DD794E, "known answers")
    root = os.environ.get("MBPO_ROOT", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    build = os.path.dirname(os.environ["MBPO_BIN"]) if os.environ.get("MBPO_BIN") else os.path.join(root, "build")
    tool = os.path.join(build, "tests", "tool_tboard_write")
    tmp = tempfile.mkdtemp(prefix="mbpo_tboard_")
    try:
        folder = os.path.join(tmp, "runs", "hopper-test-s0")
        path = None
        with case("engine writes one event file named for TensorBoard"):
            check("tool", os.path.exists(tool), f"{tool} not found (build first: make CUDA=0)")
            r = subprocess.run([tool, folder], capture_output=True, text=True, timeout=60)
            check("tool", r.returncode == 0, f"exit {r.returncode}: {r.stderr.strip()}")
            path = r.stdout.strip()
            files = os.listdir(folder)
            name = os.path.basename(path)
            check("one file, named for TensorBoard", files == [name] and re.fullmatch(
                r"events\.out\.tfevents\.\d{10}\." + re.escape(socket.gethostname()), name) is not None,
                f"{files}, host {socket.gethostname()}")
        want = expected()
        with case("pure-Python reader: framing, CRCs, every event"):
            if not path or not os.path.exists(path):
                skip("no event file from the previous case")
            check_pure(path, want)
        with case("TensorBoard's EventAccumulator reads the scalars"):
            if not path or not os.path.exists(path):
                skip("no event file from the previous case")
            check_tensorboard(build, folder, want)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    done()


if __name__ == "__main__":
    main()
