"""testlib.py: what the Python tests share: the pass/fail/skip count and the closing line
"N passed, N failed, N skipped" that tests/run.sh adds up, and the relative error of two tensors.
(Not a test itself: tests/run.sh runs only tests/test_*.py.)"""
import os
import sys

counts = {"passed": 0, "failed": 0, "skipped": 0}


def done():
    """Print the closing line and exit, non-zero when a check failed."""
    print(f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
    sys.exit(1 if counts["failed"] else 0)


def skip_all(name, why):
    """Skip the whole script (a missing dependency) with the reason shown."""
    print(f"SKIP {name}: {why}")
    counts["skipped"] += 1
    done()


def check(name, ok, detail=""):
    """Count one check; failures (and, with TEST_VERBOSE, passes) are printed with the detail."""
    if ok:
        counts["passed"] += 1
        if os.environ.get("TEST_VERBOSE"):
            print(f"ok   {name}" + (f": {detail}" if detail else ""))
    else:
        counts["failed"] += 1
        print(f"FAIL {name}: {detail}")


def rel(a, b):
    """||a - b|| / ||b|| over the flattened tensors (absolute when b is zero)."""
    import numpy as np

    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    nb = np.linalg.norm(b)
    return np.linalg.norm(a - b) / (nb if nb > 0 else 1.0)
