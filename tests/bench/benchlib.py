"""Process and /proc helpers shared by the benchmark drivers (l4_bench.py, http_bench.py,
cluster_bench.py): every process started is tracked and killed by PID, temp dirs removed."""
import glob
import os
import shutil
import signal
import subprocess
import sys
import time


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


class Procs:
    """Every process this driver starts, so each one is killed by PID on the way out."""

    def __init__(self):
        self.procs = []

    def spawn(self, argv, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        return p

    def stop(self, p, grace=3.0, extra_pids=()):
        """SIGTERM, then SIGKILL after grace seconds; extra_pids are children (nginx worker) to reap too."""
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                p.kill()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        for pid in extra_pids:
            if pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in list(self.procs):
            self.stop(p, grace=1.0)


PROCS = Procs()
TMPDIRS = []


def cleanup():
    PROCS.stop_all()
    for d in TMPDIRS:
        shutil.rmtree(d, ignore_errors=True)
    TMPDIRS.clear()


def on_term(signum, _frame):
    raise SystemExit(128 + signum)


def cpu_ticks(pid):
    """utime + stime of pid (all its threads) in clock ticks."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[11]) + int(rest[12])
    except (OSError, IndexError, ValueError):
        return None


def children(pid):
    kids = []
    for task in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            with open(task) as f:
                kids += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return kids


def pin(core):
    return ["taskset", "-c", str(core)] if core is not None else []


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:]).strip()
    except OSError:
        return ""


def strict():
    """True in CI (CI=true, as CI services set it) or with VORO_TEST_STRICT=1 (scripts/test.sh):
    what would be a skip on a developer's machine is then a failure (a peer program the install
    script installs being missing; io_uring unusable on a kernel that has it)."""
    ci = os.environ.get("CI", "").strip().lower()
    return ci not in ("", "0", "false", "no") or os.environ.get("VORO_TEST_STRICT", "") == "1"


def missing_peer(tool, what):
    """Status for a peer program that is not there: a failure under strict(), else a skip.
    Returns (status text, failed)."""
    if strict():
        return f"missing: {what} (required in CI / VORO_TEST_STRICT=1; scripts/install-deps.sh installs it)", True
    return f"skipped: {what}", False


def kernel_has_io_uring():
    """Linux 5.6 or later (what Voro's loop uses) and io_uring not switched off (io_uring_disabled 2)."""
    try:
        major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    except ValueError:
        return False
    if (major, minor) < (5, 6):
        return False
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            return f.read().strip() != "2"
    except OSError:
        return True


def voro_io_model_problem(admin_port, requested):
    """Under strict(), a Voro asked for io_uring on a kernel that has it must run io_uring (read
    from its /stats), not fall back to epoll unnoticed. Returns what is wrong, or None."""
    if requested != "io_uring" or not strict() or not kernel_has_io_uring():
        return None
    import json
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/stats", timeout=5) as r:
            running = json.loads(r.read())["io_model"]["running"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"cannot read the io model from /stats: {e}"
    if running != "io_uring":
        return f"io_uring requested on kernel {os.uname().release}, which has it, but Voro runs {running}"
    return None
