#!/usr/bin/env python3
"""cluster_bench: Voro cluster (Raft control plane) benchmark on loopback, three voro nodes on one machine.

Scenarios, with the default [cluster] timeouts (election 300 ms, heartbeat 50 ms: the local files set neither):
  pushes   - N sequential config pushes (POST /cluster/config, two small texts alternating so every push is a
             real change) through a follower, which forwards them to the leader, then N straight to the
             leader; each timed client-side from sending the request to reading the 200 answer (a new TCP
             connection per push, as vorocluster does). p50/p99/max latency and pushes/s = N / total time.
  failover - K rounds: find the leader, SIGKILL it at t0, poll both survivors' GET /cluster/status every
             10 ms until one reports state "leader" with a higher term (failover time), while a second thread
             pushes a config through the survivors until one answers 200 (write availability). The killed
             node is restarted from its data dir with the same config, and the next round starts once it is
             a follower whose applied index reached the leader's commit index. Median, p90 and max.
Every process is killed by PID on the way out (also on failure or SIGTERM), the temp dir is removed, every
loop is bounded. Writes a JSON file and a Markdown table. Python 3 standard library only.
"""

import argparse
import atexit
import http.client
import json
import math
import os
import platform
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from benchlib import ephemeral_range, log, on_term  # noqa: E402

POLL_S = 0.010          # status poll interval after a kill
NEW_LEADER_TIMEOUT_S = 10.0
WRITE_TIMEOUT_S = 15.0  # bound of the write-availability probe after a kill
CATCHUP_TIMEOUT_S = 30.0

PROCS = []              # every Popen this driver started and has not reaped
TMPDIRS = []


def cleanup():
    for p in list(PROCS):
        stop_proc(p, grace=1.0)
    for d in TMPDIRS:
        shutil.rmtree(d, ignore_errors=True)
    TMPDIRS.clear()


def stop_proc(p, grace):
    """SIGTERM, then SIGKILL after grace seconds; always reaps."""
    if p.poll() is None:
        try:
            p.send_signal(signal.SIGCONT)  # a node stopped by --inject-no-quorum cannot act on SIGTERM
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            p.kill()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        except ProcessLookupError:
            pass
    if p in PROCS:
        PROCS.remove(p)


USED_PORTS = set()


def free_port():
    """A free loopback port outside the ephemeral range: a killed node gets its ports back on restart, and
    the thousands of status polls' source ports must not take one of them while it is down."""
    lo, hi = ephemeral_range()
    spans = [(p, q) for p, q in ((1025, lo - 1), (hi + 1, 65535)) if q - p > 100]
    start = int.from_bytes(os.urandom(2), "little")
    for i in range(2000):
        if not spans:
            break
        p, q = spans[i % len(spans)]
        port = p + (start + i * 7919) % (q - p + 1)
        if port in USED_PORTS:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        USED_PORTS.add(port)
        return port
    raise RuntimeError("no free loopback port found outside the ephemeral range")


def api(port, method, path, token, body=None, timeout=5.0):
    """One request on a new connection: (status, json doc). Raises OSError / HTTPException on transport errors."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {token}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        text = r.read()
        try:
            doc = json.loads(text) if text else {}
        except ValueError:
            doc = {"_raw": text[:200].decode(errors="replace")}
        return r.status, doc
    finally:
        conn.close()


TRANSPORT_ERRORS = (OSError, http.client.HTTPException)


class Node:
    def __init__(self, a, root, idx):
        self.a = a
        self.idx = idx
        self.admin_port = free_port()
        self.raft_port = free_port()
        self.bench_port = free_port()
        self.dir = os.path.join(root, f"n{idx}")
        os.mkdir(self.dir)
        self.conf = os.path.join(self.dir, "voro.conf")
        self.log_path = os.path.join(self.dir, "voro.log")
        self.proc = None
        self.starts = 0
        # The local file: node keys, [cluster] identity (no timeout keys: the defaults are measured) and a seed
        # copy of the cluster part so the node runs before the cluster has a config.
        text = (f"[node]\nname = n{idx}\nadmin_address = 127.0.0.1:{self.admin_port}\ndata_dir = {self.dir}\n"
                f"bind.bench = 127.0.0.1:{self.bench_port}\n"
                f"[cluster]\nnode_id = {idx}\nraft_address = 127.0.0.1:{self.raft_port}\n"
                f"data_dir = {self.dir}/raft\ntoken = {a.token}\n"
                f"[server]\nthreads = 1\nio_model = {a.io_model}\n"
                + cluster_text(a, 0))
        with open(self.conf, "w") as f:
            f.write(text)

    def start(self):
        self.starts += 1
        logf = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([self.a.voro, "-c", self.conf], stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=subprocess.STDOUT, cwd=self.dir)
        finally:
            logf.close()
        PROCS.append(self.proc)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"n{self.idx} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=1)
                try:
                    conn.request("GET", "/healthz")
                    if conn.getresponse().status == 200:
                        return
                finally:
                    conn.close()
            except TRANSPORT_ERRORS:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"n{self.idx} admin API did not answer within 15 s:\n{self.log_tail()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def sigkill(self):
        os.kill(self.proc.pid, signal.SIGKILL)

    def reap(self):
        try:
            self.proc.wait(timeout=10)
        finally:
            if self.proc in PROCS and self.proc.poll() is not None:
                PROCS.remove(self.proc)

    def api(self, method, path, body=None, timeout=5.0):
        return api(self.admin_port, method, path, self.a.token, body, timeout)

    def status(self, timeout=2.0):
        """The node's /cluster/status document, or None when it does not answer 200."""
        try:
            s, d = self.api("GET", "/cluster/status", timeout=timeout)
        except TRANSPORT_ERRORS:
            return None
        return d if s == 200 else None

    def log_tail(self, n=20):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:]).rstrip()
        except OSError:
            return ""


def cluster_text(a, variant):
    """The cluster-scoped config. Two variants differing in one timeout make every push a real change."""
    return (f"[listener bench]\nbind = 127.0.0.1:{a.placeholder_port}\npool = a\n"
            f"[pool a]\nserver = a1 127.0.0.1:{a.placeholder_port}\nhealth_check = none\n"
            f"[timeouts]\ndrain = 0\nconnect = {1 + variant % 2}s\n")


class Pusher:
    """Config pushes with alternating texts (consecutive pushes always differ, across phases too)."""

    def __init__(self, a):
        self.a = a
        self.seq = 0
        self.lock = threading.Lock()

    def push(self, node, timeout):
        with self.lock:
            self.seq += 1
            text = cluster_text(self.a, self.seq)
        return node.api("POST", "/cluster/config", {"text": text, "author": "cluster_bench", "expected_version": 0},
                        timeout=timeout)


def wait_for(pred, timeout, what, interval=0.02):
    deadline = time.monotonic() + timeout
    last = None
    for _ in range(int(timeout / interval) + 100):
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def find_leader(nodes, timeout=10.0):
    """(leader node, its status) as confirmed by the leader itself."""
    def probe():
        for n in nodes:
            if not n.alive():
                continue
            d = n.status()
            if not d or not d.get("leader"):
                continue
            lid = d["leader"]["id"]
            ln = next((x for x in nodes if x.idx == lid and x.alive()), None)
            ld = ln.status() if ln else None
            if ld and ld.get("state") == "leader":
                return ln, ld
        return None
    return wait_for(probe, timeout, "a leader confirmed by itself")


def percentile(vals, q):
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    s = sorted(vals)
    k = max(1, math.ceil(q / 100.0 * len(s)))
    return s[k - 1]


def summarise(vals):
    if not vals:
        return {"n": 0}
    return {"n": len(vals), "min": min(vals), "median": statistics.median(vals), "p90": percentile(vals, 90),
            "p99": percentile(vals, 99), "max": max(vals), "mean": statistics.fmean(vals)}


# ---------------------------------------------------------------- scenarios

def build_cluster(a, nodes):
    for n in nodes:
        n.start()
    n1 = nodes[0]
    s, d = n1.api("POST", "/cluster/init", {})
    if s != 200:
        raise RuntimeError(f"init on n1: {s} {d}")
    for n in nodes[1:]:  # joins are serialised by the leader: one after the other
        s, d = n.api("POST", "/cluster/join-via", {"via": f"127.0.0.1:{n1.admin_port}"}, timeout=20)
        if s != 200:
            raise RuntimeError(f"join-via of n{n.idx}: {s} {d}")

    def formed():
        for n in nodes:
            d = n.status()
            if not d or d.get("leader") is None or sorted(m["id"] for m in d["members"]) != [1, 2, 3] \
                    or any(m["role"] != "voter" for m in d["members"]):
                return False
        return True

    wait_for(formed, 15, "three voters seen by every node")


def bench_pushes(a, nodes, pusher, res):
    leader, _ = find_leader(nodes)
    follower = next(n for n in nodes if n is not leader)
    for _ in range(a.warmup):  # first pushes also make every node activate the pushed config once
        pusher.push(leader, timeout=10)
    for path, node in (("follower", follower), ("leader", leader)):
        lat, failures = [], []
        t_start = time.perf_counter()
        for i in range(a.pushes):
            t0 = time.perf_counter()
            try:
                s, d = pusher.push(node, timeout=10)
            except TRANSPORT_ERRORS as e:
                s, d = None, {"error": f"{type(e).__name__}: {e}"}
            dt = time.perf_counter() - t0
            if s == 200 and d.get("node", {}).get("id") == leader.idx:
                lat.append(dt * 1000.0)
            else:
                failures.append(f"push {i + 1} via {path} n{node.idx}: {s} {json.dumps(d)[:200]}")
        total = time.perf_counter() - t_start
        r = summarise(lat)
        r.update({"node": node.idx, "leader": leader.idx, "pushes": a.pushes, "ok": len(lat),
                  "failures": len(failures), "failure_examples": failures[:5], "total_s": total,
                  "pushes_per_s": a.pushes / total if total > 0 else None})
        res["pushes"][path] = r
        log(f"cluster_bench: {a.pushes} pushes via {path} n{node.idx} (leader n{leader.idx}): "
            f"p50 {r.get('median', 0):.1f} ms, p99 {r.get('p99', 0):.1f} ms, {r['pushes_per_s']:.0f}/s, "
            f"{len(failures)} failed")
        for f in failures[:5]:
            log(f"    {f}")


def write_probe(a, survivors, pusher, t0_box, go, out):
    """From t0, pushes through the survivors (alternating) until one answers 200 or the bound expires."""
    if not go.wait(30):
        return
    t0 = t0_box[0]
    codes = {}
    for attempt in range(100000):
        if time.perf_counter() - t0 > WRITE_TIMEOUT_S:
            break
        n = survivors[attempt % len(survivors)]
        try:
            s, d = pusher.push(n, timeout=3)
        except TRANSPORT_ERRORS as e:
            s, d = type(e).__name__, {}
        if s == 200:
            out.update({"ok": True, "ms": (time.perf_counter() - t0) * 1000.0, "via": n.idx,
                        "attempts": attempt + 1, "answered_by": d.get("node", {}).get("id"), "refusals": codes})
            return
        key = str(s) if s != 503 else f"503 {d.get('error', '')}".strip()
        codes[key] = codes.get(key, 0) + 1
        time.sleep(POLL_S)
    out.update({"ok": False, "refusals": codes})


def failover_round(a, nodes, pusher, rnd):
    r = {"round": rnd, "loadavg_1m_before": round(os.getloadavg()[0], 2)}
    leader, ld = find_leader(nodes)
    old_term = ld["term"]
    survivors = [n for n in nodes if n is not leader]
    r.update({"killed": leader.idx, "old_term": old_term})
    t0_box, go, wres = [None], threading.Event(), {}
    th = threading.Thread(target=write_probe, args=(a, survivors, pusher, t0_box, go, wres), daemon=True)
    th.start()
    stopped = None
    try:
        t0 = time.perf_counter()
        leader.sigkill()
        t0_box[0] = t0
        if a.inject_no_quorum and rnd == 1:
            # Driver self-test: one survivor frozen too leaves no majority, so no leader may be reported.
            stopped = survivors[0]
            os.kill(stopped.proc.pid, signal.SIGSTOP)
            r["injected"] = f"SIGSTOP n{stopped.idx}"
    finally:
        go.set()
    try:
        failover_poll(survivors, old_term, t0, r)
    finally:
        if stopped is not None:
            th.join(WRITE_TIMEOUT_S + 10)
            os.kill(stopped.proc.pid, signal.SIGCONT)
    leader.reap()
    th.join(WRITE_TIMEOUT_S + 10)
    r["write"] = dict(wres)
    if wres.get("ok"):
        r["write_ms"] = wres["ms"]
    return restart_and_catch_up(nodes, leader, r)


def failover_poll(survivors, old_term, t0, r):
    """Polls the survivors every POLL_S until one reports itself leader in a higher term (bounded)."""
    first_change = None
    polls = 0
    tick = t0
    while r.get("failover_ms") is None and time.perf_counter() - t0 < NEW_LEADER_TIMEOUT_S \
            and polls < int(NEW_LEADER_TIMEOUT_S / POLL_S) * 2:
        polls += 1
        for n in survivors:
            d = n.status(timeout=0.5)
            now = time.perf_counter()
            if not d:
                continue
            if first_change is None and (d.get("term", 0) > old_term or d.get("state") == "candidate"):
                first_change = (now - t0) * 1000.0
            if d.get("state") == "leader" and d.get("term", 0) > old_term:
                r.update({"failover_ms": (now - t0) * 1000.0, "new_leader": n.idx, "new_term": d["term"]})
                break
        tick += POLL_S
        pause = tick - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        else:
            tick = time.perf_counter()
    r["first_term_change_ms"] = first_change
    r["status_polls"] = polls


def restart_and_catch_up(nodes, leader, r):
    # Restart the killed node from its data dir; wait until it follows and has applied what the leader committed.
    t1 = time.perf_counter()
    leader.start()

    def caught_up():
        _, nd = find_leader(nodes, timeout=5)
        target = nd["commit_index"]
        d = leader.status()
        # (a restarted node that won a later election is the reference itself: caught up too)
        if d and d.get("state") in ("follower", "leader") and d.get("leader") \
                and d.get("applied_index", -1) >= target:
            return d["applied_index"]
        return None

    r["restart_applied_index"] = wait_for(caught_up, CATCHUP_TIMEOUT_S, f"restarted n{leader.idx} caught up",
                                          interval=0.05)
    r["restart_catchup_ms"] = (time.perf_counter() - t1) * 1000.0
    return r


# ---------------------------------------------------------------- reporting

def fmt_ms(v):
    return "—" if v is None else f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def markdown(summary):
    f, w, c = summary["failover"], summary["write_availability"], summary["restart_catchup"]
    lines = [f"Load average before the run: {' / '.join(f'{x:.2f}' for x in summary['environment']['loadavg_at_start'])}"
             f" (1/5/15 min); {summary['environment']['cpus']} CPUs.", "",
             "| after SIGKILL of the leader | rounds | min ms | median ms | p90 ms | max ms |",
             "|---|---|---|---|---|---|"]
    for title, s in (("new leader (a survivor reports `leader`, higher term)", f),
                     ("write availability (first push through a survivor answered 200)", w),
                     ("killed node restarted, follower, applied index caught up", c)):
        lines.append(f"| {title} | {s.get('n', 0)} | {fmt_ms(s.get('min'))} | {fmt_ms(s.get('median'))} | "
                     f"{fmt_ms(s.get('p90'))} | {fmt_ms(s.get('max'))} |")
    lines += ["", "| config push | pushes | p50 ms | p99 ms | max ms | pushes/s | failed |", "|---|---|---|---|---|---|---|"]
    for path, title in (("follower", "through a follower (forwarded to the leader)"), ("leader", "straight to the leader")):
        p = summary["pushes"].get(path)
        if not p:
            continue
        pps = "—" if p.get("pushes_per_s") is None else f"{p['pushes_per_s']:.0f}"
        lines.append(f"| {title} | {p['pushes']} | {fmt_ms(p.get('median'))} | {fmt_ms(p.get('p99'))} | "
                     f"{fmt_ms(p.get('max'))} | {pps} | {p['failures']} |")
    t = summary["target"]
    lines += ["", f"Target failover < {t['failover_median_ms_below']:.0f} ms median: "
              + ("**met**" if t["met"] else "**not met**")
              + ("" if f.get("median") is None else f" (median {fmt_ms(f['median'])} ms")
              + ("" if f.get("n", 0) == summary["settings"]["kills"]
                 else f"; only {f.get('n', 0)} of {summary['settings']['kills']} kills produced a new leader")
              + ")."]
    if summary["failures"]:
        lines += ["", "Failures:"] + [f"- {x}" for x in summary["failures"]]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--voro", required=True, help="path of the voro binary")
    ap.add_argument("--smoke", action="store_true", help="2 kills, 20 pushes (< 60 s); fails on any failure")
    ap.add_argument("--kills", type=int, default=12, help="failover rounds (SIGKILL of the leader)")
    ap.add_argument("--pushes", type=int, default=200, help="sequential pushes per path (follower, leader)")
    ap.add_argument("--warmup", type=int, default=5, help="unmeasured pushes before the push benchmark")
    ap.add_argument("--io-model", default="epoll", help="[server] io_model of the nodes")
    ap.add_argument("--inject-no-quorum", action="store_true",
                    help="driver self-test: in round 1 also SIGSTOP a survivor, so no new leader can appear "
                         "and the run must fail")
    ap.add_argument("--target-ms", type=float, default=1000.0, help="failover median target")
    ap.add_argument("--json-out", default="cluster_bench_results.json")
    ap.add_argument("--md-out", default="cluster_bench_results.md")
    a = ap.parse_args(argv)
    if a.smoke:
        a.kills, a.pushes, a.warmup = 2, 20, 2
    if not (1 <= a.kills <= 100 and 1 <= a.pushes <= 10000 and 0 <= a.warmup <= 100):
        ap.error("parameter out of range")
    return a


def main(argv):
    a = parse_args(argv)
    command = shlex.join([sys.executable, os.path.abspath(__file__)] + argv)
    signal.signal(signal.SIGTERM, on_term)
    atexit.register(cleanup)
    a.voro = os.path.abspath(a.voro)
    if not os.access(a.voro, os.X_OK):
        log(f"cluster_bench: {a.voro} is not an executable")
        return 2
    a.token = secrets.token_hex(24)
    a.placeholder_port = free_port()  # every node moves listener "bench" to its own port (bind.bench)

    load_start = os.getloadavg()
    log(f"cluster_bench: load average before the run: {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}")
    started = time.monotonic()
    res = {"pushes": {}, "rounds": []}
    failures = []
    nodes = []
    try:
        root = tempfile.mkdtemp(prefix="voro-cluster-bench-")
        TMPDIRS.append(root)
        nodes = [Node(a, root, i) for i in (1, 2, 3)]
        try:
            build_cluster(a, nodes)
            pusher = Pusher(a)
            bench_pushes(a, nodes, pusher, res)
            for p in res["pushes"].values():
                if p["failures"]:
                    failures.append(f"{p['failures']} of {p['pushes']} pushes failed via n{p['node']}: "
                                    + "; ".join(p["failure_examples"][:2]))
            for rnd in range(1, a.kills + 1):
                r = failover_round(a, nodes, pusher, rnd)
                res["rounds"].append(r)
                log(f"cluster_bench: round {rnd}/{a.kills} (load {r['loadavg_1m_before']}): killed n{r['killed']} "
                    f"(term {r['old_term']}) -> new leader "
                    + (f"n{r['new_leader']} term {r['new_term']} after {r['failover_ms']:.0f} ms"
                       if r.get("failover_ms") is not None else f"NONE within {NEW_LEADER_TIMEOUT_S:.0f} s")
                    + f"; write ok after {fmt_ms(r.get('write_ms'))} ms; restart caught up in "
                      f"{r['restart_catchup_ms']:.0f} ms")
                if r.get("failover_ms") is None:
                    failures.append(f"round {rnd}: killing leader n{r['killed']} produced no new leader "
                                    f"within {NEW_LEADER_TIMEOUT_S:.0f} s")
                if not r["write"].get("ok"):
                    failures.append(f"round {rnd}: no push through a survivor succeeded within "
                                    f"{WRITE_TIMEOUT_S:.0f} s ({r['write'].get('refusals')})")
        except (RuntimeError, TRANSPORT_ERRORS, subprocess.TimeoutExpired) as e:
            failures.append(f"aborted: {type(e).__name__}: {e}")
            for n in nodes:
                log(f"---- n{n.idx} log tail ----\n{n.log_tail()}")
        for n in nodes:  # a clean stop is part of the result: report a node that does not exit 0 on SIGTERM
            if n.proc is not None and n.proc.poll() is None:
                stop_proc(n.proc, grace=10)
                if n.proc.returncode != 0:
                    failures.append(f"n{n.idx} exited with {n.proc.returncode} on SIGTERM")
    finally:
        cleanup()

    fo = [r["failover_ms"] for r in res["rounds"] if r.get("failover_ms") is not None]
    wr = [r["write_ms"] for r in res["rounds"] if r.get("write_ms") is not None]
    rc = [r["restart_catchup_ms"] for r in res["rounds"] if r.get("restart_catchup_ms") is not None]
    fsum = summarise(fo)
    summary = {
        "command": command,
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "elapsed_s": round(time.monotonic() - started, 1),
        "settings": {"smoke": a.smoke, "kills": a.kills, "pushes": a.pushes, "warmup": a.warmup,
                     "io_model": a.io_model, "poll_ms": POLL_S * 1000, "new_leader_timeout_s": NEW_LEADER_TIMEOUT_S,
                     "cluster_timeouts": "defaults (election_timeout 300ms, heartbeat_timeout 50ms)"},
        "environment": {"kernel": platform.release(), "python": platform.python_version(), "cpus": os.cpu_count(),
                        "loadavg_at_start": load_start, "loadavg_at_end": os.getloadavg()},
        "failover": fsum,
        "write_availability": summarise(wr),
        "restart_catchup": summarise(rc),
        "pushes": res["pushes"],
        "target": {"failover_median_ms_below": a.target_ms,
                   "met": bool(fo) and len(fo) == a.kills and fsum["median"] < a.target_ms},
        "failures": failures,
        "rounds": res["rounds"],
    }
    try:
        summary["environment"]["voro_version"] = subprocess.run(
            [a.voro, "-v"], capture_output=True, timeout=10).stdout.decode(errors="replace").strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    md = markdown(summary)
    with open(a.json_out, "w") as f:
        json.dump(summary, f, indent=1)
    with open(a.md_out, "w") as f:
        f.write(f"Command: `{command}`\n\n" + md)
    print(md, end="")
    log(f"cluster_bench: {summary['elapsed_s']} s; results in {a.json_out} and {a.md_out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
