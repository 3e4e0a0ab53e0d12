#!/usr/bin/env python3
"""http_bench: L7 (HTTP/1.1) benchmark driver comparing Voro, HAProxy and nginx with wrk on one machine.

Each proxy runs with one worker pinned to one core (taskset); wrk (one thread) and http_backend (a tiny
epoll HTTP/1.1 keep-alive server answering small responses) run pinned to the other core.
Scenarios per proxy and repeat:
  ka100   - keep-alive, 100 connections
  ka1000  - keep-alive, 1000 connections
  close   - connection per request (wrk -H 'Connection: close'), 100 connections
The figure of merit is the proxy's CPU time per request: utime+stime of the proxy process (from
/proc/PID/stat) over the run divided by the requests wrk completed. Also req/s and p99 (wrk --latency).
A run whose load core was over 90% busy (from /proc/stat) is flagged: there the load, not the proxy,
may have limited req/s (CPU per request stays meaningful). Medians over the repeats and the ratios to
HAProxy are computed inside one run and written as Markdown and JSON. Python 3 standard library only.

The process helpers and the Proxy class here are also used by gpu_farm_bench.py.
"""

import argparse
import atexit
import glob
import json
import os
import platform
import re
import resource
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from benchlib import missing_peer, voro_io_model_problem, PROCS, Procs, TMPDIRS, children, cleanup, cpu_ticks, ephemeral_range, log, on_term, pid_alive, pin, tail  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
LABEL = {"direct": "direct (no proxy)", "haproxy": "HAProxy", "nginx": "nginx", "voro": "Voro"}
IO_MODELS = ("io_uring", "epoll", "poll", "select")
BUSY_FLAG_PCT = 90.0

# name -> (wrk connections, extra wrk args)
SCENARIOS = {
    "ka100": (100, []),
    "ka1000": (1000, []),
    "close": (100, ["-H", "Connection: close"]),
}
SCENARIO_TITLE = {"ka100": "keep-alive c100", "ka1000": "keep-alive c1000", "close": "connection per request c100"}

# (key, label, unit, better)
METRICS = (
    ("cpu_us_per_req", "proxy CPU per request", "µs", "lower"),
    ("rps", "requests per second", "req/s", "higher"),
    ("p99_ms", "latency p99", "ms", "lower"),
    ("p50_ms", "latency p50", "ms", "lower"),
    ("proxy_cpu_pct", "proxy core busy (proxy process)", "%", "—"),
    ("load_core_busy_pct", "load core busy", "%", "—"),
)


# ---------------------------------------------------------------- processes and /proc


def install_cleanup():
    signal.signal(signal.SIGTERM, on_term)
    atexit.register(cleanup)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit the raised soft limit


USED_PORTS = set()


def free_port():
    """A free loopback port OUTSIDE the ephemeral range: the connection-per-request scenario opens
    ~100k outgoing connections, and a port from bind(0) could be taken as a source port meanwhile."""
    lo, hi = ephemeral_range()
    spans = [(p, q) for p, q in ((1025, lo - 1), (hi + 1, 65535)) if q - p > 100]
    start = int.from_bytes(os.urandom(2), "little")
    for i in range(2000):
        if spans:
            p, q = spans[i % len(spans)]
            port = p + (start + i * 7919) % (q - p + 1)
        else:
            port = 0
        if port in USED_PORTS:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = s.getsockname()[1]
        # bind() without SO_REUSEADDR succeeded: nothing listens on (or lingers at) this port.
        USED_PORTS.add(port)
        return port
    raise RuntimeError("no free loopback port found")


def listening_ports():
    """Set of TCP ports listening on 127.0.0.1 or 0.0.0.0. `ss` asks the kernel for listeners only; reading
    /proc/net/tcp (the fallback) walks every socket, slow with ~100k TIME-WAIT entries on a busy host."""
    ports = set()
    if shutil.which("ss"):
        try:
            cp = subprocess.run(["ss", "-Hltn4"], capture_output=True, timeout=5)
            if cp.returncode == 0:
                for line in cp.stdout.decode(errors="replace").splitlines():
                    f = line.split()
                    if len(f) >= 4:
                        host, _, port = f[3].rpartition(":")
                        if host in ("127.0.0.1", "0.0.0.0", "*") and port.isdigit():
                            ports.add(int(port))
                return ports
        except (OSError, subprocess.TimeoutExpired):
            pass
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] == "0A" and fields[1].split(":")[0] in ("0100007F", "00000000"):
                    ports.add(int(fields[1].split(":")[1], 16))
    except OSError:
        pass
    return ports


def listening(port):
    """True when something listens on 127.0.0.1:port (no connection is made)."""
    return port in listening_ports()


def core_times(core):
    """(busy, total) jiffies of one CPU from /proc/stat; None if unreadable."""
    if core is None:
        return None
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith(f"cpu{core} "):
                    v = [int(x) for x in line.split()[1:]]
                    total = sum(v[:8])  # guest time is already inside user/nice
                    idle = v[3] + (v[4] if len(v) > 4 else 0)
                    return total - idle, total
    except (OSError, ValueError):
        pass
    return None


def busy_pct(before, after):
    if not before or not after or after[1] <= before[1]:
        return None
    return round(100.0 * (after[0] - before[0]) / (after[1] - before[1]), 1)


def cpu_list(spec):
    """Parses a taskset-style list such as 1 or 0,2 or 1-3."""
    cpus = set()
    for part in str(spec).split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def pin_self(core, tool):
    """The driver itself (checks, /proc sampling) stays off the proxy's core."""
    if core is None:
        return
    try:
        os.sched_setaffinity(0, cpu_list(core))
    except (OSError, ValueError) as e:
        log(f"{tool}: cannot pin the driver to cores {core}: {e}")


def read_line(p, deadline, buf, stream="stdout"):
    """Next line of p's stdout (or stderr) before deadline (None on timeout/EOF); buf carries partial data."""
    fd = getattr(p, stream).fileno()
    for _ in range(10000):
        if b"\n" in buf[0]:
            line, buf[0] = buf[0].split(b"\n", 1)
            return line.decode(errors="replace")
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([fd], [], [], min(left, 0.5))
        if r:
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            buf[0] += chunk
    return None


def wait_listening(ports, proc=None, timeout=10.0):
    """True once every port listens; False on timeout or when proc exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        if set(ports) <= listening_ports():
            return True
        time.sleep(0.05)
    return False


def tool_version(argv):
    try:
        cp = subprocess.run(argv, capture_output=True, timeout=10)
        return (cp.stdout + cp.stderr).decode(errors="replace").splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "?"


def environment():
    return {"kernel": platform.release(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "loadavg_at_end": os.getloadavg()}


# ---------------------------------------------------------------- proxies

class Proxy:
    """One running proxy under test in its own temp dir; `pid` is the process that does the proxying.

    kind is direct|haproxy|nginx|voro; conf is the configuration text (ignored for direct); ports are
    the listener ports to wait for; direct_port is what "direct" forwards to (no process at all)."""

    def __init__(self, kind, conf, ports, core, voro=None, direct_port=None, tag="l7bench"):
        self.kind = kind
        self.conf = conf
        self.ports = list(ports)
        self.core = core
        self.voro = voro
        self.direct_port = direct_port
        self.dir = tempfile.mkdtemp(prefix=f"{tag}-{kind}-")
        TMPDIRS.append(self.dir)
        self.proc = None
        self.pid = None
        self.extra = []
        self.stderr_path = os.path.join(self.dir, "stderr.log")

    def command(self):
        d = self.dir
        conf = self.conf.replace("@DIR@", d)
        if self.kind == "haproxy":
            cfg = os.path.join(d, "haproxy.cfg")
            with open(cfg, "w") as f:
                f.write(conf)
            return ["haproxy", "-f", cfg, "-db"]
        if self.kind == "nginx":
            cfg = os.path.join(d, "nginx.conf")
            with open(cfg, "w") as f:
                f.write(conf)
            return ["nginx", "-p", d + "/", "-e", os.path.join(d, "error.log"), "-c", cfg, "-g", "daemon off;"]
        cfg = os.path.join(d, "voro.ini")
        with open(cfg, "w") as f:
            f.write(conf)
        return [self.voro, "-c", cfg]

    def start(self, timeout=10.0):
        """Returns None when every listener is up, else a reason string (with the stderr tail)."""
        if self.kind == "direct":
            return None
        argv = pin(self.core) + self.command()
        with open(os.path.join(self.dir, "stdout.log"), "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = PROCS.spawn(argv, stdout=out, stderr=err, cwd=self.dir)
        self.pid = self.proc.pid  # taskset execs the proxy: same PID
        if not wait_listening(self.ports, self.proc, timeout):
            rc = self.proc.poll()
            if rc is not None:
                return f"exited with status {rc} before listening; stderr tail:\n{self.stderr_tail()}"
            return f"no listener on 127.0.0.1:{self.ports} within {timeout:.0f} s; stderr tail:\n{self.stderr_tail()}"
        if self.kind == "nginx":
            # The master only supervises: measure the single worker, which does all the proxying.
            for _ in range(100):
                kids = children(self.proc.pid)
                if kids:
                    self.pid = kids[0]
                    self.extra = kids
                    break
                time.sleep(0.05)
            else:
                return "nginx worker process did not appear"
        return None

    def port(self, i=0):
        return self.direct_port if self.kind == "direct" else self.ports[i]

    def stderr_tail(self):
        if self.kind == "direct":
            return ""
        text = tail(self.stderr_path)
        if self.kind == "nginx":
            text = (text + "\n" + tail(os.path.join(self.dir, "error.log"))).strip()
        return text

    def alive(self):
        if self.kind == "direct":
            return True
        return self.proc is not None and self.proc.poll() is None and pid_alive(self.pid)

    def stop(self):
        if self.proc is not None:
            PROCS.stop(self.proc, extra_pids=self.extra)
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.dir in TMPDIRS:
            TMPDIRS.remove(self.dir)


HAPROXY_GLOBAL = """global
    nbthread 1
    maxconn 20000
    no strict-limits
    tune.pool-low-fd-ratio 90
    tune.pool-high-fd-ratio 95
    pidfile @DIR@/haproxy.pid
"""


def haproxy_http_conf(port, backend_port):
    return f"""# generated by http_bench.py
{HAPROXY_GLOBAL}
defaults
    mode http
    option http-keep-alive
    http-reuse always
    maxconn 20000
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s

frontend fe
    bind 127.0.0.1:{port}
    default_backend be

backend be
    server b1 127.0.0.1:{backend_port}
"""


NGINX_HEAD = """worker_processes 1;
worker_rlimit_nofile 20000;
pid @DIR@/nginx.pid;
error_log @DIR@/error.log warn;
events {
    worker_connections 20000;
}
"""

NGINX_HTTP_COMMON = """    access_log off;
    client_body_temp_path @DIR@/client_body;
    proxy_temp_path @DIR@/proxy_temp;
    fastcgi_temp_path @DIR@/fastcgi_temp;
    uwsgi_temp_path @DIR@/uwsgi_temp;
    scgi_temp_path @DIR@/scgi_temp;
    keepalive_timeout 60s;
    keepalive_requests 1000000;
"""


def nginx_http_conf(port, backend_port):
    # keepalive_requests is raised on both sides: nginx's default of 1000 would close connections that
    # HAProxy and Voro keep, and the comparison is about proxying, not about reconnecting.
    return f"""# generated by http_bench.py
{NGINX_HEAD}
http {{
{NGINX_HTTP_COMMON}
    upstream be {{
        server 127.0.0.1:{backend_port};
        keepalive 64;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def voro_head(admin_port, io_model):
    return f"""[server]
threads = 1
io_model = {io_model}

[node]
admin_address = 127.0.0.1:{admin_port}
"""


def voro_http_conf(port, backend_port, admin_port, io_model):
    return f"""# generated by http_bench.py
{voro_head(admin_port, io_model)}
[listener web]
mode = http
bind = 127.0.0.1:{port}
pool = be

[pool be]
algorithm = round_robin
health_check = none
server = b1 127.0.0.1:{backend_port}
"""


def nginx_present():
    return shutil.which("nginx") is not None


def select_proxies(wanted, voro, tool):
    """(present, status, missing) for a list of direct|haproxy|nginx|voro. Voro listed without a
    runnable --voro is a usage error (exit 2); missing is True when a peer program is absent
    under benchlib.strict() (CI), which fails the run."""
    present, status, missing = [], {}, False
    for p in wanted:
        if p == "voro":
            if not voro:
                log(f"{tool}: voro is in the list but no --voro given")
                raise SystemExit(2)
            elif not os.access(voro, os.X_OK):
                log(f"{tool}: {voro} is not an executable")
                raise SystemExit(2)
            else:
                present.append(p)
        elif p == "direct":
            present.append(p)
        elif p in ("haproxy", "nginx"):
            if shutil.which(p):
                present.append(p)
            else:
                status[p], miss = missing_peer(p, f"{p} is not installed")
                missing |= miss
        else:
            raise SystemExit(f"{tool}: unknown proxy {p!r}")
    return present, status, missing


def http_get(port, path="/", timeout=5.0):
    """(status, body bytes) of a GET through 127.0.0.1:port."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# ---------------------------------------------------------------- wrk

def parse_duration_ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    if not m:
        return None
    v = float(m.group(1))
    return v * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]


def parse_wrk(out):
    """Requests, req/s, p50/p99 (ms) and error counts from wrk --latency output."""
    r = {"requests": None, "rps": None, "p50_ms": None, "p99_ms": None, "socket_errors": 0, "non2xx": 0}
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+)(\w+)", out, re.M)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"^Requests/sec:\s*([0-9.]+)", out, re.M)
    if m:
        r["rps"] = float(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s*{pct}%\s+(\S+)", out, re.M)
        if m:
            r[key] = parse_duration_ms(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r["socket_errors_detail"] = {k: int(v) for k, v in zip(("connect", "read", "write", "timeout"), m.groups())}
        r["socket_errors"] = sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        r["non2xx"] = int(m.group(1))
    return r


def run_wrk(a, px, scenario):
    conns, extra = SCENARIOS[scenario]
    argv = pin(a.load_core) + ["wrk", "-t1", f"-c{conns}", f"-d{a.duration:g}s", "--timeout", "5s", "--latency"] + \
        extra + [f"http://127.0.0.1:{px.port()}/"]
    c0, l0, t0 = cpu_ticks(px.pid), core_times(a.load_core), time.monotonic()
    p = PROCS.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=a.duration + 60)
    except subprocess.TimeoutExpired:
        PROCS.stop(p, grace=1.0)
        return {"error": f"wrk timed out: {shlex.join(argv)}"}
    finally:
        if p in PROCS.procs:
            PROCS.procs.remove(p)
    c1, l1, t1 = cpu_ticks(px.pid), core_times(a.load_core), time.monotonic()
    text = out.decode(errors="replace")
    r = parse_wrk(text)
    r["command"] = shlex.join(argv)
    r["load_core_busy_pct"] = busy_pct(l0, l1)
    if p.returncode != 0 or not r["requests"]:
        r["error"] = f"wrk exit {p.returncode}: {(text + err.decode(errors='replace'))[-400:]}"
        return r
    if px.kind != "direct" and c0 is not None and c1 is not None:
        r["proxy_cpu_s"] = (c1 - c0) / CLK_TCK
        r["cpu_us_per_req"] = 1e6 * r["proxy_cpu_s"] / r["requests"]
        r["proxy_cpu_pct"] = round(100.0 * r["proxy_cpu_s"] / (t1 - t0), 1)
    r["load_core_saturated"] = r["load_core_busy_pct"] is not None and r["load_core_busy_pct"] > BUSY_FLAG_PCT
    # Connection-per-request runs see a few read errors when a close races wrk's next write; responses that
    # are not 2xx, or errors on more than 1% of requests, mean the proxy misbehaved.
    if r["non2xx"] or r["socket_errors"] > 0.01 * r["requests"]:
        r["error"] = f"{r['non2xx']} non-2xx responses, socket errors {r.get('socket_errors_detail')}"
    return r


def proxy_conf(a, kind, port, backend_port, admin_port):
    if kind == "haproxy":
        return haproxy_http_conf(port, backend_port)
    if kind == "nginx":
        return nginx_http_conf(port, backend_port)
    if kind == "voro":
        return voro_http_conf(port, backend_port, admin_port, a.voro_io_model)
    return ""


def run_one(a, kind, backend_port, expect_body):
    res = {"proxy": kind, "status": "ok", "errors": [], "scenarios": {}}
    port, admin = free_port(), free_port()
    px = Proxy(kind, proxy_conf(a, kind, port, backend_port, admin), [port], a.proxy_core, voro=a.voro,
               direct_port=backend_port, tag="httpbench")
    try:
        why = px.start()
        if not why and kind == "voro":
            why = voro_io_model_problem(admin, a.voro_io_model)
        if why:
            res["status"] = "failed to start"
            res["detail"] = why
            return res
        try:
            st, body = http_get(px.port())
            if st != 200 or body != expect_body:
                res["errors"].append(f"check request: status {st}, body {body[:80]!r} (expected {expect_body!r})")
        except OSError as e:
            res["errors"].append(f"check request: {e}")
        if not res["errors"]:
            for sc in a.scenarios:
                if not px.alive():
                    res["errors"].append(f"proxy died before {sc}; stderr tail:\n{px.stderr_tail()}")
                    break
                r = run_wrk(a, px, sc)
                res["scenarios"][sc] = r
                if r.get("error"):
                    res["errors"].append(f"{sc}: {r['error']}")
                time.sleep(0.5)  # let closing connections settle between scenarios
        if not px.alive():
            res["errors"].append(f"proxy not alive at the end; stderr tail:\n{px.stderr_tail()}")
        if res["errors"]:
            res["status"] = "traffic failure"
        return res
    finally:
        px.stop()


# ---------------------------------------------------------------- reporting

def median_of(runs, sc, key):
    """Median over the repeats in which this scenario ran without errors (another scenario's failure in the
    same repeat does not discard it; the failure itself is reported in the status line)."""
    vals = [r["scenarios"][sc][key] for r in runs
            if sc in r["scenarios"] and not r["scenarios"][sc].get("error") and r["scenarios"][sc].get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, key):
    if v is None:
        return "—"
    if key in ("cpu_us_per_req", "p99_ms", "p50_ms"):
        return f"{v:.2f}"
    if key.endswith("_pct"):
        return f"{v:.0f}"
    return f"{v:,.0f}"


def markdown(summary):
    present = summary["present"]
    ratio_cols = [p for p in present if p not in ("direct", "haproxy")] if "haproxy" in present else []
    lines = []
    for sc in summary["scenarios"]:
        lines.append(f"**{SCENARIO_TITLE[sc]}**\n")
        head = ["metric", "unit", "better"] + [LABEL[p] for p in present] + [f"{LABEL[p]}/HAProxy" for p in ratio_cols]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for key, title, unit, better in METRICS:
            row = [title, unit, better] + [fmt(summary["medians"][p][sc][key], key) for p in present]
            for p in ratio_cols:
                q = summary["ratios"].get(p, {}).get(sc, {}).get(key)
                row.append("—" if q is None else f"{q:.2f}")
            lines.append("| " + " | ".join(row) + " |")
        flagged = [f"{LABEL[p]} repeat {r['repeat']}" for p in present for r in summary["runs"][p]
                   if r["scenarios"].get(sc, {}).get("load_core_saturated")]
        if flagged:
            lines.append(f"\nLoad core over {BUSY_FLAG_PCT:.0f}% busy (req/s and latency limited by the load side): "
                         + ", ".join(flagged))
        lines.append("")
    for p, st in summary["status"].items():
        lines.append(f"- {LABEL[p]}: {st}")
    if "voro" in summary["ratios"]:
        q = summary["ratios"]["voro"].get("ka100", {}).get("cpu_us_per_req")
        if q is not None:
            lines.append(f"- target Voro CPU/request <= 0.9x HAProxy (keep-alive c100): {q:.2f}x -> "
                         f"{'met' if q <= 0.9 else 'NOT met'}")
    return "\n".join(lines) + "\n"


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--voro", help="path of the voro binary (Voro is benchmarked only when given)")
    ap.add_argument("--require-voro", action="store_true",  # accepted for old command lines
                    help="exit non-zero when Voro fails to start (default: report it and go on)")
    ap.add_argument("--voro-io-model", default="io_uring", choices=IO_MODELS)
    ap.add_argument("--http-backend", required=True, help="path of the http_backend tool")
    ap.add_argument("--proxies", default="direct,haproxy,nginx,voro", help="comma list (direct = no proxy)")
    ap.add_argument("--scenarios", default="ka100,ka1000,close", help="comma list of ka100, ka1000, close")
    ap.add_argument("--smoke", action="store_true", help="tiny run (< 60 s): every proxy must answer correctly")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of each wrk run")
    ap.add_argument("--body-size", type=int, default=13, help="response body bytes (small)")
    ap.add_argument("--proxy-core", default="0")
    ap.add_argument("--load-core", default="1")
    ap.add_argument("--json-out", default="http_bench_results.json")
    ap.add_argument("--md-out", default="http_bench_results.md")
    a = ap.parse_args(argv)
    a.scenarios = [s.strip() for s in a.scenarios.split(",") if s.strip()]
    if not a.scenarios or any(s not in SCENARIOS for s in a.scenarios):
        ap.error(f"--scenarios takes {', '.join(SCENARIOS)}")
    if a.smoke:
        a.repeats, a.duration = 1, 1.0
    if not (1 <= a.repeats <= 50 and 0 < a.duration <= 600 and 1 <= a.body_size <= 256):
        ap.error("parameter out of range")
    return a


def main(argv):
    a = parse_args(argv)
    command = shlex.join([sys.executable, os.path.abspath(__file__)] + argv)
    install_cleanup()
    a.http_backend = os.path.abspath(a.http_backend)
    if a.voro:
        a.voro = os.path.abspath(a.voro)
    if not os.access(a.http_backend, os.X_OK):
        log(f"http_bench: {a.http_backend} is not an executable")
        return 2
    if not shutil.which("wrk"):
        log("http_bench: wrk is not installed (scripts/install-deps.sh installs it)")
        return 2
    if (os.cpu_count() or 1) < 2 or not shutil.which("taskset"):
        log("http_bench: fewer than 2 CPUs or no taskset: running unpinned")
        a.proxy_core = a.load_core = None
    pin_self(a.load_core, "http_bench")

    present, status, missing = select_proxies([p.strip() for p in a.proxies.split(",") if p.strip()], a.voro,
                                              "http_bench")
    for p, st in status.items():
        log(f"http_bench: {LABEL[p]} {st}")
    runs = {p: [] for p in present}
    started = time.monotonic()
    load_start = os.getloadavg()
    try:
        hb = PROCS.spawn(pin(a.load_core) + [a.http_backend, "--port", str(free_port()),
                                             "--body-size", str(a.body_size)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = read_line(hb, time.monotonic() + 10, [b""])
        if not line or not line.startswith("READY "):
            log(f"http_bench: http_backend did not start: {line!r}")
            return 2
        backend_port = int(line.split()[1])
        st, expect_body = http_get(backend_port)
        log(f"http_bench: http_backend on :{backend_port} answers {st} with {len(expect_body)} bytes")
        for rep in range(a.repeats):
            order = present[rep % len(present):] + present[:rep % len(present)] if present else []
            for name in order:
                if any(r["status"] == "failed to start" for r in runs[name]):
                    continue
                t0, load1 = time.monotonic(), os.getloadavg()[0]
                r = run_one(a, name, backend_port, expect_body)
                r.update(repeat=rep + 1, seconds=round(time.monotonic() - t0, 1), loadavg_1m_before=round(load1, 2))
                runs[name].append(r)
                brief = "; ".join(f"{sc}: " + ", ".join(f"{k}={fmt(v.get(k), k)}" for k, *_ in METRICS[:3])
                                  for sc, v in r["scenarios"].items())
                log(f"http_bench: repeat {rep + 1}/{a.repeats} {LABEL[name]}: {r['status']} ({r['seconds']} s, "
                    f"load {load1:.1f}) {brief}")
                for e in r["errors"] + ([r["detail"]] if "detail" in r else []):
                    log(f"    {e}")
    finally:
        cleanup()

    failed = missing
    for p in present:
        bad = [r for r in runs[p] if r["status"] != "ok"]
        if not bad:
            status[p] = f"ok ({len(runs[p])} repeats)"
            continue
        first = bad[0]
        if first["status"] == "failed to start":
            status[p] = "failed to start: " + first.get("detail", "").replace("\n", " | ")[:600]
            failed = True  # Voro included: a smoke that did not run it proves nothing
        else:
            status[p] = f"{first['status']} in {len(bad)} of {len(runs[p])} repeats: " + \
                "; ".join(first["errors"])[:600].replace("\n", " | ")
            failed = True

    meds = {p: {sc: {k: median_of(runs[p], sc, k) for k, *_ in METRICS} for sc in a.scenarios} for p in present}
    ratios = {}
    if "haproxy" in meds:
        for p in meds:
            if p in ("direct", "haproxy"):
                continue
            ratios[p] = {sc: {k: (meds[p][sc][k] / meds["haproxy"][sc][k]
                                  if meds[p][sc][k] is not None and meds["haproxy"][sc][k] else None)
                              for k, *_ in METRICS[:4]} for sc in a.scenarios}
    env = dict(environment(), loadavg_at_start=load_start, wrk=tool_version(["wrk", "--version"]))
    for p in ("haproxy", "nginx"):
        if p in present:
            env[p] = tool_version([p, "-v"])
    summary = {
        "command": command,
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "elapsed_s": round(time.monotonic() - started, 1),
        "settings": {k: getattr(a, k) for k in ("smoke", "repeats", "duration", "scenarios", "body_size",
                                               "proxy_core", "load_core", "voro_io_model")},
        "environment": env,
        "present": present,
        "scenarios": a.scenarios,
        "status": status,
        "medians": meds,
        "ratios": ratios,
        "runs": runs,
    }
    md = markdown(summary)
    with open(a.json_out, "w") as f:
        json.dump(summary, f, indent=1)
    with open(a.md_out, "w") as f:
        f.write(f"Command: `{command}`\n\n" + md)
    print(md, end="")
    log(f"http_bench: {summary['elapsed_s']} s; results in {a.json_out} and {a.md_out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
