#!/usr/bin/env python3
"""l4_bench: L4 (TCP) benchmark driver comparing Voro, HAProxy and nginx side by side on one machine.

Each proxy runs with one worker pinned to one core; the load generator (tcpload), the echo backend
and iperf3 run pinned to the other core. Scenarios per proxy and repeat:
  hold  - N connections held open through the proxy, M of them pinging (latency p50/p99); proxy RSS
          before and while holding, RSS per idle connection
  rate  - connections per second (connect, 64-byte request, echo, close) and proxy CPU per connection
  iperf - iperf3 throughput through the proxy (Gbit/s)
Medians over the repeats and the ratios Voro/HAProxy and nginx/HAProxy are computed inside the run,
written as a Markdown table and a JSON file. Python 3 standard library only.
"""

import argparse
import atexit
import glob
import json
import os
import platform
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
from benchlib import missing_peer, voro_io_model_problem, PROCS, Procs, TMPDIRS, children, cleanup, cpu_ticks, ephemeral_range, log, on_term, pid_alive, pin, tail  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
# "direct" is no proxy at all: the load talks to the backends, which shows the load core's own ceiling.
PROXIES = ("direct", "haproxy", "nginx", "voro")
LABEL = {"direct": "direct (no proxy)", "haproxy": "HAProxy", "nginx": "nginx", "voro": "Voro"}
IO_MODELS = ("io_uring", "epoll", "poll", "select")


def label(name):
    """voro-epoll (one of several Voro io models in one run) reads as 'Voro epoll'."""
    if name.startswith("voro-"):
        return "Voro " + name[5:]
    return LABEL[name]


def io_model_of(name, a):
    return name[5:] if name.startswith("voro-") else a.voro_io_models[0]

# (key, label, unit, better) for the results table; "better" tells the reader which way is good.
METRICS = (
    ("iperf_gbps", "iperf3 throughput", "Gbit/s", "higher"),
    ("iperf_gbit_per_cpu_s", "iperf3 data per proxy CPU-second", "Gbit", "higher"),
    ("conns_per_sec", "connections per second", "conn/s", "higher"),
    ("cpu_us_per_conn", "proxy CPU per connection", "µs", "lower"),
    ("rss_before_kb", "proxy RSS before holding", "KiB", "lower"),
    ("rss_hold_kb", "proxy RSS while holding", "KiB", "lower"),
    ("rss_per_conn_bytes", "RSS per held connection", "bytes", "lower"),
    ("hold_p50_us", "ping p50 while holding", "µs", "lower"),
    ("hold_p99_us", "ping p99 while holding", "µs", "lower"),
    ("rate_conn_p99_us", "connection p99 in rate test", "µs", "lower"),
)


USED_PORTS = set()


def free_port():
    """A free loopback port OUTSIDE the ephemeral range: the scenarios open ~100k outgoing connections,
    and a port handed out by bind(0) could be taken as a source port before the listener re-binds it."""
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
        if not listening(port):
            USED_PORTS.add(port)
            return port
    raise RuntimeError("no free loopback port found")


def listening(port):
    """True when something listens on 127.0.0.1:port (read from /proc: no connection is made)."""
    want = "0100007F:%04X" % port
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1] == want and fields[3] == "0A":
                    return True
    except OSError:
        pass
    return False


def vm_rss_kb(pid):
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def cpu_list(spec):
    """Parses a taskset-style list such as 1 or 0,2 or 1-3."""
    cpus = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def read_line(p, deadline, buf):
    """Next stdout line of p before deadline (None on timeout/EOF); buf carries partial data."""
    fd = p.stdout.fileno()
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


def echo_check(port, rounds=3, size=32768):
    """Data integrity through the proxy: random bytes out, the same bytes back."""
    for i in range(rounds):
        payload = os.urandom(size)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(payload)
            got = bytearray()
            for _ in range(10000):
                if len(got) >= size:
                    break
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        if bytes(got) != payload:
            return f"echo mismatch on connection {i}: sent {size} bytes, got {len(got)} (differ)"
    return None


# ---------------------------------------------------------------- proxy configurations

def haproxy_conf(d, ports, backends):
    return f"""# generated by l4_bench.py
global
    nbthread 1
    maxconn 20000
    no strict-limits
    tune.pool-low-fd-ratio 90
    tune.pool-high-fd-ratio 95
    pidfile {d}/haproxy.pid

defaults
    mode tcp
    maxconn 20000
    timeout connect 5s
    timeout client 120s
    timeout server 120s

frontend bench
    bind 127.0.0.1:{ports['bench']}
    default_backend be

backend be
    server b1 127.0.0.1:{backends['echo']}

frontend iperf
    bind 127.0.0.1:{ports['iperf']}
    default_backend be_iperf

backend be_iperf
    server i1 127.0.0.1:{backends['iperf']}
"""


def nginx_conf(d, ports, backends, module):
    return f"""# generated by l4_bench.py
load_module {module};
worker_processes 1;
worker_rlimit_nofile 20000;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{
    worker_connections 20000;
}}
stream {{
    server {{
        listen 127.0.0.1:{ports['bench']};
        proxy_pass 127.0.0.1:{backends['echo']};
        proxy_connect_timeout 5s;
        proxy_timeout 120s;
    }}
    server {{
        listen 127.0.0.1:{ports['iperf']};
        proxy_pass 127.0.0.1:{backends['iperf']};
        proxy_connect_timeout 5s;
        proxy_timeout 120s;
    }}
}}
"""


def voro_conf(ports, backends, io_model):
    return f"""# generated by l4_bench.py
[server]
threads = 1
io_model = {io_model}

[node]
admin_address = 127.0.0.1:{ports['admin']}

[listener bench]
mode = tcp
bind = 127.0.0.1:{ports['bench']}
pool = be

[pool be]
algorithm = round_robin
health_check = none
server = b1 127.0.0.1:{backends['echo']}

[listener iperf]
mode = tcp
bind = 127.0.0.1:{ports['iperf']}
pool = be_iperf

[pool be_iperf]
algorithm = round_robin
health_check = none
server = i1 127.0.0.1:{backends['iperf']}
"""


class Proxy:
    """One running proxy under test, in its own temp dir; `pid` is the process that does the proxying."""

    def __init__(self, name, args, backends):
        self.name = name
        self.args = args
        self.backends = backends
        self.dir = tempfile.mkdtemp(prefix=f"l4bench-{name}-")
        TMPDIRS.append(self.dir)
        self.ports = {"bench": free_port(), "iperf": free_port(), "admin": free_port()}
        self.proc = None
        self.pid = None
        self.extra = []
        self.stderr_path = os.path.join(self.dir, "stderr.log")

    def command(self):
        d = self.dir
        if self.name == "haproxy":
            cfg = os.path.join(d, "haproxy.cfg")
            with open(cfg, "w") as f:
                f.write(haproxy_conf(d, self.ports, self.backends))
            return ["haproxy", "-f", cfg, "-db"]
        if self.name == "nginx":
            cfg = os.path.join(d, "nginx.conf")
            with open(cfg, "w") as f:
                f.write(nginx_conf(d, self.ports, self.backends, self.args.nginx_stream_module))
            return ["nginx", "-p", d + "/", "-e", os.path.join(d, "error.log"), "-c", cfg,
                    "-g", "daemon off;"]
        cfg = os.path.join(d, "voro.ini")
        with open(cfg, "w") as f:
            f.write(voro_conf(self.ports, self.backends, io_model_of(self.name, self.args)))
        return [self.args.voro, "-c", cfg]

    def start(self, timeout=10.0):
        """Returns None when both listeners are up, else a reason string (with the stderr tail)."""
        if self.name == "direct":
            self.ports = {"bench": self.backends["echo"], "iperf": self.backends["iperf"]}
            return None
        argv = pin(self.args.proxy_core) + self.command()
        with open(os.path.join(self.dir, "stdout.log"), "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = PROCS.spawn(argv, stdout=out, stderr=err, cwd=self.dir)
        self.pid = self.proc.pid  # taskset execs the proxy: same PID
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                return f"exited with status {rc} before listening; stderr tail:\n{self.stderr_tail()}"
            if listening(self.ports["bench"]) and listening(self.ports["iperf"]):
                break
            time.sleep(0.05)
        else:
            return f"no listener on 127.0.0.1:{self.ports['bench']} within {timeout:.0f} s; " \
                   f"stderr tail:\n{self.stderr_tail()}"
        if self.name == "nginx":
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

    def stderr_tail(self):
        if self.name == "direct":
            return ""
        text = tail(self.stderr_path)
        if self.name == "nginx":
            text = (text + "\n" + tail(os.path.join(self.dir, "error.log"))).strip()
        return text

    def alive(self):
        if self.name == "direct":
            return True
        return self.proc is not None and self.proc.poll() is None and pid_alive(self.pid)

    def stop(self):
        if self.proc is not None:
            PROCS.stop(self.proc, extra_pids=self.extra)


# ---------------------------------------------------------------- scenarios

def run_json_tool(argv, timeout):
    """Runs a tool that prints one JSON object as its last stdout line; returns (dict|None, error)."""
    p = PROCS.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        PROCS.stop(p, grace=1.0)
        return None, f"timed out after {timeout:.0f} s: {shlex.join(argv)}"
    finally:
        if p in PROCS.procs:
            PROCS.procs.remove(p)
    lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        return None, f"exit {p.returncode}: {err.decode(errors='replace').strip()[-400:]}"
    return json.loads(lines[-1]), None


def scenario_hold(a, px, res):
    n, m = a.hold_conns, a.hold_active
    argv = pin(a.load_core) + [a.tcpload, "hold", "--target", f"127.0.0.1:{px.ports['bench']}",
                               "--conns", str(n), "--active", str(m), "--duration", str(a.hold_duration),
                               "--interval-ms", str(a.interval_ms), "--json"]
    total = 60 + a.hold_duration + 30
    p = PROCS.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    buf = [b""]
    try:
        deadline = time.monotonic() + total
        line = read_line(p, deadline, buf)
        if not line or not line.startswith("ESTABLISHED"):
            res["errors"].append(f"hold: tcpload gave no ESTABLISHED line ({line!r})")
            return
        # Sample while the connections are held and the active ones ping; keep the peak.
        samples = []
        t_end = time.monotonic() + a.hold_duration * 0.8
        for i in range(5):
            time.sleep(max(0.0, min(a.hold_duration * 0.15, t_end - time.monotonic())))
            rss = vm_rss_kb(px.pid)
            if rss is not None:
                samples.append(rss)
        line = read_line(p, deadline, buf)
        p.wait(timeout=max(1.0, deadline - time.monotonic()))
        if p.returncode != 0:
            res["errors"].append(f"hold: tcpload exited with status {p.returncode}")
    except subprocess.TimeoutExpired:
        res["errors"].append("hold: tcpload did not finish in time")
        return
    finally:
        PROCS.stop(p, grace=2.0)
        p.stdout.close()
        p.stderr.close()
    if not line or not line.startswith("{"):
        res["errors"].append(f"hold: no JSON from tcpload ({line!r})")
        return
    h = json.loads(line)
    res["raw"]["hold"] = h
    if samples:
        res["rss_hold_kb"] = max(samples)
        if h["established"] > 0 and res.get("rss_before_kb") is not None:
            res["rss_per_conn_bytes"] = (res["rss_hold_kb"] - res["rss_before_kb"]) * 1024.0 / h["established"]
    if h["p50_us"] >= 0:
        res["hold_p50_us"] = h["p50_us"]
        res["hold_p99_us"] = h["p99_us"]
    if h["mismatches"]:
        res["integrity"].append(f"hold: {h['mismatches']} echo mismatches")
    if h["established"] < n:
        res["integrity"].append(f"hold: only {h['established']} of {n} connections established")
    if h["dropped_idle"]:
        res["integrity"].append(f"hold: {h['dropped_idle']} held connections dropped by the proxy")
    if h["requests"] == 0 and m > 0:
        res["integrity"].append("hold: no ping completed")
    if h["timeouts"] or h["io_errors"]:
        res["errors"].append(f"hold: {h['timeouts']} timeouts, {h['io_errors']} io errors")


def scenario_rate(a, px, res):
    argv = pin(a.load_core) + [a.tcpload, "rate", "--target", f"127.0.0.1:{px.ports['bench']}",
                               "--duration", str(a.duration), "--concurrency", str(a.rate_concurrency),
                               "--json"]
    c0, t0 = cpu_ticks(px.pid), time.monotonic()
    r, err = run_json_tool(argv, a.duration + 30)
    time.sleep(0.3)  # let the proxy finish closing the last connections: that CPU belongs to them
    c1, t1 = cpu_ticks(px.pid), time.monotonic()
    if err:
        res["errors"].append("rate: " + err)
        res["integrity"].append("rate: tcpload failed")
        return
    res["raw"]["rate"] = r
    if c0 is not None and c1 is not None:
        res["raw"]["rate"]["proxy_cpu_s"] = (c1 - c0) / CLK_TCK
        res["raw"]["rate"]["proxy_cpu_pct"] = round(100.0 * (c1 - c0) / CLK_TCK / (t1 - t0), 1)
    res["conns_per_sec"] = r["conns_per_sec"]
    res["rate_conn_p99_us"] = r["conn_p99_us"]
    if r["completed"] > 0 and c0 is not None and c1 is not None:
        res["cpu_us_per_conn"] = (c1 - c0) / CLK_TCK / r["completed"] * 1e6
    if r["mismatches"]:
        res["integrity"].append(f"rate: {r['mismatches']} echo mismatches")
    if r["completed"] == 0:
        res["integrity"].append("rate: no connection completed")
    if r["connect_errors"] or r["io_errors"] or r["timeouts"]:
        res["errors"].append(f"rate: {r['connect_errors']} connect errors, {r['io_errors']} io errors, "
                             f"{r['timeouts']} timeouts")


def scenario_iperf(a, px, res):
    # One retry: iperf3 occasionally loses its control connection on a busy shared machine.
    for attempt in range(2):
        sub = {"errors": [], "integrity": [], "raw": {}}
        iperf_once(a, px, sub)
        if not sub["integrity"] or not px.alive():
            break
        res["errors"].append(f"iperf attempt {attempt + 1} failed: " + "; ".join(sub["integrity"]))
    res["errors"] += sub["errors"]
    res["integrity"] += sub["integrity"]
    res["raw"].update(sub["raw"])
    for k in ("iperf_gbps", "iperf_gbit_per_cpu_s"):
        if k in sub:
            res[k] = sub[k]


def iperf_once(a, px, res):
    port = px.backends["iperf"]
    srv = PROCS.spawn(pin(a.load_core) + ["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", str(port), "--idle-timeout",
                                          str(int(a.iperf_time) + 20)],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if listening(port) or srv.poll() is not None:
                break
            time.sleep(0.05)
        if not listening(port):
            res["errors"].append("iperf: iperf3 server did not start")
            res["integrity"].append("iperf: no server")
            return
        argv = pin(a.load_core) + ["iperf3", "-c", "127.0.0.1", "-p", str(px.ports["iperf"]), "-t",
                                   str(a.iperf_time), "-J", "--connect-timeout", "5000"]
        c0, t0 = cpu_ticks(px.pid), time.monotonic()
        p = PROCS.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, _ = p.communicate(timeout=a.iperf_time + 20)
            c1, t1 = cpu_ticks(px.pid), time.monotonic()
        except subprocess.TimeoutExpired:
            PROCS.stop(p, grace=1.0)
            try:
                out, _ = p.communicate(timeout=5)
            except (subprocess.TimeoutExpired, ValueError, OSError):
                out = b""
            res["integrity"].append(f"iperf: client timed out after {a.iperf_time + 20} s; output tail: "
                                    f"{out.decode(errors='replace')[-300:]!r}")
            return
        finally:
            if p in PROCS.procs:
                PROCS.procs.remove(p)
        try:
            j = json.loads(out.decode(errors="replace"))
            bps = j["end"]["sum_received"]["bits_per_second"]
            nbytes = j["end"]["sum_received"]["bytes"]
        except (ValueError, KeyError, TypeError):
            res["integrity"].append(f"iperf: no result (exit {p.returncode}): "
                                    f"{out.decode(errors='replace')[-300:]!r}")
            return
        # Proxy CPU share during the test tells whether the proxy or the load core was the bottleneck.
        res["raw"]["iperf"] = {"bits_per_second": bps, "bytes": nbytes,
                               "proxy_cpu_pct": None if c0 is None or c1 is None
                               else round(100.0 * (c1 - c0) / CLK_TCK / (t1 - t0), 1)}
        res["iperf_gbps"] = bps / 1e9
        # Wall-clock throughput suffers when other jobs take the proxy's core; data moved per CPU-second
        # of the proxy does not, so it is the fairer efficiency figure on a shared machine.
        if c0 is not None and c1 is not None and c1 > c0:
            res["iperf_gbit_per_cpu_s"] = nbytes * 8 / 1e9 / ((c1 - c0) / CLK_TCK)
        if nbytes <= 0:
            res["integrity"].append("iperf: no bytes received")
    finally:
        PROCS.stop(srv, grace=1.0)


def run_one(a, name, backends):
    res = {"proxy": name, "status": "ok", "errors": [], "integrity": [], "raw": {}}
    px = Proxy(name, a, backends)
    try:
        why = px.start()
        if not why and name.startswith("voro"):
            why = voro_io_model_problem(px.ports["admin"], name[5:] if name.startswith("voro-") else a.voro_io_models[0])
        if why:
            res["status"] = "failed to start"
            res["detail"] = why
            return res
        res["config_dir_ports"] = dict(px.ports)
        bad = None
        try:
            bad = echo_check(px.ports["bench"])
        except OSError as e:
            bad = f"echo check: {e}"
        if bad:
            res["integrity"].append(bad)
        time.sleep(0.2)
        res["rss_before_kb"] = vm_rss_kb(px.pid)
        if not bad:
            for step in (scenario_hold, scenario_rate, scenario_iperf):
                if not px.alive():
                    res["integrity"].append(f"proxy died before {step.__name__}; stderr tail:\n{px.stderr_tail()}")
                    break
                t0 = time.monotonic()
                step(a, px, res)
                res["raw"].setdefault("seconds", {})[step.__name__] = round(time.monotonic() - t0, 2)
        if not px.alive():
            res["integrity"].append(f"proxy not alive at the end; stderr tail:\n{px.stderr_tail()}")
        if res["integrity"]:
            res["status"] = "traffic failure"
        return res
    finally:
        px.stop()
        shutil.rmtree(px.dir, ignore_errors=True)
        if px.dir in TMPDIRS:
            TMPDIRS.remove(px.dir)


# ---------------------------------------------------------------- reporting

def medians(runs):
    out = {}
    for key, *_ in METRICS:
        vals = [r[key] for r in runs if r.get("status") == "ok" and r.get(key) is not None]
        out[key] = statistics.median(vals) if vals else None
    return out


def fmt(v, key):
    if v is None:
        return "—"
    if key in ("iperf_gbps", "iperf_gbit_per_cpu_s"):
        return f"{v:.2f}"
    if key in ("cpu_us_per_conn",):
        return f"{v:.1f}"
    return f"{v:,.0f}"


def ratio(x, y):
    if x is None or y is None or y == 0:
        return None
    return x / y


def markdown(summary):
    present = list(summary["medians"])
    ratios = [r[:-len("/haproxy")] for r in summary["ratios"]]
    head = ["metric", "unit", "better"] + [label(p) for p in present] + [f"{label(r)}/HAProxy" for r in ratios]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, title, unit, better in METRICS:
        row = [title, unit, better] + [fmt(summary["medians"][p][key], key) for p in present]
        for r in ratios:
            q = summary["ratios"][f"{r}/haproxy"][key]
            row.append("—" if q is None else f"{q:.2f}")
        lines.append("| " + " | ".join(row) + " |")
    notes = []
    for p, st in summary["status"].items():
        notes.append(f"- {label(p)}: {st}")
    return "\n".join(lines) + ("\n\n" + "\n".join(notes) if notes else "") + "\n"


def versions(a, present):
    v = {"kernel": platform.release(), "python": platform.python_version(), "cpus": os.cpu_count(),
         "loadavg_at_end": os.getloadavg()}
    for name, argv in (("haproxy", ["haproxy", "-v"]), ("nginx", ["nginx", "-v"]), ("iperf3", ["iperf3", "-v"])):
        if name in present or name == "iperf3":
            try:
                cp = subprocess.run(argv, capture_output=True, timeout=10)
                v[name] = (cp.stdout + cp.stderr).decode(errors="replace").splitlines()[0]
            except (OSError, subprocess.TimeoutExpired, IndexError):
                v[name] = "?"
    return v


# ---------------------------------------------------------------- main

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--voro", help="path of the voro binary (Voro is benchmarked only when given)")
    ap.add_argument("--require-voro", action="store_true",
                    help="accepted for old command lines: Voro failing to start always fails the run")
    ap.add_argument("--voro-io-model", default="io_uring",
                    help="io_model for Voro; a comma list (io_uring,epoll) runs one Voro column per model")
    ap.add_argument("--tcpload", required=True, help="path of the tcpload tool")
    ap.add_argument("--echo-backend", required=True, help="path of the echo_backend tool")
    ap.add_argument("--proxies", default="direct,haproxy,nginx,voro",
                    help="comma list to run (default all; direct = no proxy, the load's ceiling)")
    ap.add_argument("--smoke", action="store_true", help="tiny run (< 60 s) that checks data integrity")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds of the rate scenario")
    ap.add_argument("--rate-concurrency", type=int, default=50)
    ap.add_argument("--iperf-time", type=int, default=5)
    ap.add_argument("--hold-conns", type=int, default=9000)
    ap.add_argument("--hold-active", type=int, default=50)
    ap.add_argument("--hold-duration", type=float, default=5.0)
    ap.add_argument("--interval-ms", type=float, default=10.0, help="ping interval of each active connection")
    ap.add_argument("--proxy-core", default="0")
    ap.add_argument("--load-core", default="1")
    ap.add_argument("--json-out", default="l4_bench_results.json")
    ap.add_argument("--md-out", default="l4_bench_results.md")
    a = ap.parse_args(argv)
    a.voro_io_models = [m.strip() for m in a.voro_io_model.split(",") if m.strip()]
    if not a.voro_io_models or any(m not in IO_MODELS for m in a.voro_io_models):
        ap.error(f"--voro-io-model takes {', '.join(IO_MODELS)}")
    if a.smoke:
        a.repeats, a.duration, a.iperf_time = 1, 1.0, 1
        a.hold_conns, a.hold_active, a.hold_duration = 200, 10, 1.0
    if not (1 <= a.repeats <= 50 and 0 < a.duration <= 600 and 1 <= a.iperf_time <= 600
            and 1 <= a.hold_conns <= 9900 and 0 <= a.hold_active <= a.hold_conns and 0 < a.hold_duration <= 600):
        ap.error("parameter out of range")
    return a


def main(argv):
    a = parse_args(argv)
    command = shlex.join([sys.executable, os.path.abspath(__file__)] + argv)
    signal.signal(signal.SIGTERM, on_term)
    atexit.register(cleanup)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit the raised soft limit

    # Proxies run with their temp dir as cwd: make every tool path absolute.
    a.tcpload, a.echo_backend = os.path.abspath(a.tcpload), os.path.abspath(a.echo_backend)
    if a.voro:
        a.voro = os.path.abspath(a.voro)
    for tool in (a.tcpload, a.echo_backend):
        if not os.access(tool, os.X_OK):
            log(f"l4_bench: {tool} is not an executable")
            return 2
    if (os.cpu_count() or 1) < 2 or not shutil.which("taskset"):
        log("l4_bench: fewer than 2 CPUs or no taskset: running unpinned")
        a.proxy_core = a.load_core = None
    if a.load_core is not None:
        # The driver itself (echo check, /proc sampling) stays off the proxy's core.
        try:
            os.sched_setaffinity(0, cpu_list(a.load_core))
        except (OSError, ValueError) as e:
            log(f"l4_bench: cannot pin the driver to cores {a.load_core}: {e}")
    if not shutil.which("iperf3"):
        log("l4_bench: iperf3 is not installed (scripts/install-deps.sh installs it)")
        return 2

    wanted = [p.strip() for p in a.proxies.split(",") if p.strip()]
    present, status, missing = [], {}, False
    for p in wanted:
        if p == "voro":
            # Several io models give one column each, all measured in the same run.
            names = ["voro"] if len(a.voro_io_models) == 1 else ["voro-" + m for m in a.voro_io_models]
            for name in names:
                if not a.voro:
                    log("l4_bench: voro is in --proxies but no --voro given")
                    return 2
                elif not os.access(a.voro, os.X_OK):
                    log(f"l4_bench: {a.voro} is not an executable")
                    return 2
                else:
                    present.append(name)
        elif p == "direct":
            present.append(p)
        elif p == "haproxy":
            if shutil.which("haproxy"):
                present.append(p)
            else:
                status[p], miss = missing_peer("haproxy", "haproxy is not installed")
                missing |= miss
        elif p == "nginx":
            mods = sorted(glob.glob("/usr/lib/nginx/modules/ngx_stream_module.so")
                          + glob.glob("/usr/lib*/nginx/modules/ngx_stream_module.so")
                          + glob.glob("/usr/share/nginx/modules/ngx_stream_module.so"))
            if not shutil.which("nginx"):
                status[p], miss = missing_peer("nginx", "nginx is not installed")
                missing |= miss
            elif not mods:
                status[p], miss = missing_peer("nginx", "nginx stream module (libnginx-mod-stream) is not installed")
                missing |= miss
            else:
                a.nginx_stream_module = mods[0]
                present.append(p)
        else:
            log(f"l4_bench: unknown proxy {p!r}")
            return 2
    for p, st in status.items():
        log(f"l4_bench: {label(p)} {st}")

    runs = {p: [] for p in present}
    started = time.monotonic()
    load_start = os.getloadavg()
    try:
        eb = PROCS.spawn(pin(a.load_core) + [a.echo_backend, "--ports", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = read_line(eb, time.monotonic() + 10, [b""])
        if not line or not line.startswith("READY "):
            log(f"l4_bench: echo_backend did not start: {line!r}")
            return 2
        backends = {"echo": int(line.split()[1]), "iperf": free_port()}
        log(f"l4_bench: echo backend on :{backends['echo']}, iperf3 backend on :{backends['iperf']}")
        for rep in range(a.repeats):
            # Rotate the order each repeat so no proxy always runs first or last.
            order = present[rep % len(present):] + present[:rep % len(present)] if present else []
            for name in order:
                if any(r["status"] == "failed to start" for r in runs[name]):
                    continue
                t0 = time.monotonic()
                load1 = os.getloadavg()[0]  # other jobs on this shared machine are the main noise source
                r = run_one(a, name, backends)
                r["loadavg_1m_before"] = round(load1, 2)
                r["repeat"] = rep + 1
                r["seconds"] = round(time.monotonic() - t0, 1)
                runs[name].append(r)
                brief = ", ".join(f"{k}={fmt(r.get(k), k)}" for k, *_ in METRICS if r.get(k) is not None)
                log(f"l4_bench: repeat {rep + 1}/{a.repeats} {label(name)}: {r['status']} ({r['seconds']} s, load {load1:.1f}) {brief}")
                for e in r["errors"] + r["integrity"] + ([r["detail"]] if "detail" in r else []):
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
            status[p] = "failed to start: " + first.get("detail", "").replace("\n", " | ")[-600:]
            failed = True  # Voro included: a smoke that did not run it proves nothing
        else:
            status[p] = f"{first['status']} in {len(bad)} of {len(runs[p])} repeats: " + \
                        "; ".join(first["integrity"])[-600:].replace("\n", " | ")
            failed = True

    meds = {p: medians(runs[p]) for p in present}
    ratios_ = {}
    if "haproxy" in meds:
        for p in meds:
            if p not in ("direct", "haproxy"):
                ratios_[f"{p}/haproxy"] = {k: ratio(meds[p][k], meds["haproxy"][k]) for k, *_ in METRICS}
    summary = {
        "command": command,
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "elapsed_s": round(time.monotonic() - started, 1),
        "settings": {k: getattr(a, k) for k in ("smoke", "repeats", "duration", "rate_concurrency", "iperf_time",
                                               "hold_conns", "hold_active", "hold_duration", "interval_ms",
                                               "proxy_core", "load_core", "voro_io_model")},
        "environment": dict(versions(a, present), loadavg_at_start=load_start),
        "status": status,
        "medians": meds,
        "ratios": ratios_,
        "runs": runs,
    }
    md = markdown(summary)
    with open(a.json_out, "w") as f:
        json.dump(summary, f, indent=1)
    with open(a.md_out, "w") as f:
        f.write(f"Command: `{command}`\n\n" + md)
    print(md, end="")
    log(f"l4_bench: {summary['elapsed_s']} s; results in {a.json_out} and {a.md_out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
