"""CTest runner for the benchmark smokes and driver self-tests: runs one driver, passes its output
through, and fails unless the driver exited with the expected status AND printed every expected
pattern (CTest alone ignores the exit status of a test once PASS_REGULAR_EXPRESSION is set).

usage: expect_run.py [--exit N] [--expect REGEX]... [--timeout S] -- COMMAND [ARG]...
"""
import argparse
import re
import signal
import subprocess
import sys

CHILD = []


def stop_child(timeout=15):
    """SIGTERM the driver (it kills what it started), then SIGKILL after `timeout` seconds."""
    for p in CHILD:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


def on_term(signum, _frame):
    stop_child()
    sys.exit(128 + signum)


def main(argv):
    if "--" not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    cut = argv.index("--")
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("--exit", type=int, default=0, help="the exit status the driver must end with")
    ap.add_argument("--expect", action="append", default=[], help="a regex its stdout+stderr must match")
    ap.add_argument("--timeout", type=float, default=110.0, help="seconds before the driver is stopped")
    a = ap.parse_args(argv[:cut])
    cmd = argv[cut + 1:]
    if not cmd or not 1 <= a.timeout <= 3600:
        ap.error("a command and a timeout of 1..3600 s are needed")
    try:
        patterns = [re.compile(p, re.M) for p in a.expect]
    except re.error as e:
        ap.error(f"bad --expect pattern: {e}")
    signal.signal(signal.SIGTERM, on_term)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    CHILD.append(p)
    try:
        out, _ = p.communicate(timeout=a.timeout)
    except subprocess.TimeoutExpired:
        stop_child()
        out = p.stdout.read() if p.stdout else b""
        sys.stdout.write(out.decode(errors="replace"))
        print(f"expect_run: FAIL: the driver ran past {a.timeout:g} s and was stopped", flush=True)
        return 1
    text = out.decode(errors="replace")
    sys.stdout.write(text)
    problems = []
    if p.returncode != a.exit:
        problems.append(f"exit status {p.returncode}, expected {a.exit}")
    for pat in patterns:
        if not pat.search(text):
            problems.append(f"no line matches {pat.pattern!r}")
    if problems:
        print("expect_run: FAIL: " + "; ".join(problems), flush=True)
        return 1
    print(f"expect_run: PASS: exit status {a.exit} and {len(patterns)} expected pattern(s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
