"""testlib.py: what the Python tests share: the pass/fail/skip count and the closing line
"N passed, N failed, N skipped" that tests/run.sh adds up, and the relative error of two tensors.
(Not a test itself: tests/run.sh runs only tests/test_*.py.)

One behaviour counts once, as in the C tests (tests/test.h): checks run inside a case,

    with case("engine writes ZIP64"):
        check("end record", ...)
        check("every entry has an extra", ...)

and the case passes when none of its checks failed and nothing was raised; it fails otherwise
(each failed check printed with its detail); skip(why) inside it ends it as skipped. A check made
outside any case counts as a case of its own.
"""
import contextlib
import os
import sys
import traceback

counts = {"passed": 0, "failed": 0, "skipped": 0}
_case = None  # the running case: {"name", "failed", "skipped"}


class Skip(Exception):
    """Raised by skip(): ends the running case as skipped."""


def done():
    """Print the closing line and exit, non-zero when a case failed."""
    print(f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
    sys.exit(1 if counts["failed"] else 0)


def skip_all(name, why):
    """Skip the whole script (a missing dependency) with the reason shown."""
    print(f"SKIP {name}: {why}")
    counts["skipped"] += 1
    done()


def skip(why):
    """End the running case as skipped, with the reason shown."""
    raise Skip(why)


@contextlib.contextmanager
def case(name):
    """One behaviour: a block of checks counted as one pass, fail or skip (see the top)."""
    global _case
    if _case is not None:
        raise RuntimeError(f"case {name} inside case {_case['name']}")
    _case = {"name": name, "failed": False, "skipped": None}
    try:
        yield
    except Skip as e:
        _case["skipped"] = str(e)
    except AssertionError as e:
        print(f"FAIL {name}: {e}")
        _case["failed"] = True
    except Exception:  # noqa: BLE001 -- a crash of the code under test is a failure of the case
        print(f"FAIL {name}: exception\n{traceback.format_exc()}")
        _case["failed"] = True
    c, _case = _case, None
    if c["failed"]:
        counts["failed"] += 1
    elif c["skipped"] is not None:
        print(f"SKIP {name}: {c['skipped']}")
        counts["skipped"] += 1
    else:
        counts["passed"] += 1
        if os.environ.get("TEST_VERBOSE"):
            print(f"ok   {name}")


def run_case(name, fn):
    """case(name) around fn(); fn may also return a string to skip with that reason."""
    with case(name):
        r = fn()
        if isinstance(r, str):
            skip(r)


def check(name, ok, detail=""):
    """One assertion: a failure is printed with the detail and fails the running case (outside a
    case, it counts as a case of its own). Returns ok."""
    if _case is None:
        with case(name):
            check(name, ok, detail)
        return ok
    if not ok:
        print(f"FAIL {_case['name']}: {name}" + (f": {detail}" if detail else ""))
        _case["failed"] = True
    elif os.environ.get("TEST_VERBOSE"):
        print(f"  ok {name}" + (f": {detail}" if detail else ""))
    return ok


def rel(a, b):
    """||a - b|| / ||b|| over the flattened tensors (absolute when b is zero)."""
    import numpy as np

    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    nb = np.linalg.norm(b)
    return np.linalg.norm(a - b) / (nb if nb > 0 else 1.0)
