#!/usr/bin/env python3
"""sse_bench: many concurrent SSE streams (streamed chat completions from gpusim) through Voro, HAProxy and
nginx in the same run: memory per stream and proxy CPU per token.

One gpusim (docs/gpusim.md) with enough batch slots to run every stream at once (--gpus 8 --max-batch 256) and
a step long enough (--step-ms) that every stream stays open while the others are opened; the load process
(tests/integration/scale_load.py sse) opens --streams connections, sends one streamed chat completion on each
(`Connection: close`, --tokens tokens) and checks that every stream ends with all its token events and
[DONE]. Each proxy runs one worker pinned to --proxy-core (taskset); gpusim, the load process and this driver
run on --load-core. A fresh gpusim and proxy per run; --repeats runs per proxy, the order rotated each repeat.

Per run:
  memory per stream   (VmHWM of the proxy process after the run - its VmRSS after a small warm-up) / streams:
                      the proxy's peak resident memory while every stream was open (the peak of gpusim's
                      running count, sampled meanwhile, shows they were), per stream
  CPU per token       utime+stime of the proxy process (/proc/PID/stat) over the run / tokens delivered
For nginx the worker process is measured (the master only supervises). Medians of the repeats and the ratios
Voro/HAProxy and Voro/nginx are written as Markdown and JSON. A run in which any stream did not end with all
its tokens is a traffic failure (exit status 1). Python 3 standard library only.
"""

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpu_farm_bench as gfb  # noqa: E402  (HAProxy/nginx/Voro streaming configs)
import http_bench as hb  # noqa: E402  (process helpers and Proxy)

PROXIES = ("voro", "haproxy", "nginx")
MODEL = "gpusim-8b"
WARM_STREAMS = 20
DEFAULT_LOAD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration", "scale_load.py")


def proc_kib(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def gpusim_running(port):
    try:
        _st, body = hb.http_get(port, "/metrics", timeout=2.0)
    except OSError:
        return None
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("vllm:num_requests_running"):
            return float(line.rsplit(None, 1)[1])
    return None


def run_load(a, port, streams, timeout, sample=None):
    """Runs scale_load.py sse; returns (report dict or None, error or None, command). sample() is called
    every ~0.2 s while it runs."""
    argv = hb.pin(a.load_core) + [sys.executable, a.load, "sse", "--port", str(port), "--streams", str(streams),
                                  "--tokens", str(a.tokens), "--model", MODEL, "--timeout", f"{timeout:g}"]
    p = hb.PROCS.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    buf = [b""]
    deadline = time.monotonic() + timeout + 60
    line = None
    try:
        while time.monotonic() < deadline:
            line = hb.read_line(p, min(deadline, time.monotonic() + 0.2), buf)
            if line is not None:
                break
            if p.poll() is not None and not buf[0]:
                break
            if sample:
                sample()
    finally:
        hb.PROCS.stop(p, grace=2.0)
    if not line or not line.startswith("{"):
        err = p.stderr.read().decode(errors="replace")[-600:] if p.stderr else ""
        return None, f"load process gave no report (exit {p.returncode}): {err}", shlex.join(argv)
    return json.loads(line), None, shlex.join(argv)


def proxy_conf(a, kind, port, admin, gport):
    servers = [("g1", gport)]
    if kind == "haproxy":
        return gfb.haproxy_farm_conf(port, servers)  # option http-no-delay: SSE chunks are not held back
    if kind == "nginx":
        return gfb.nginx_stream_conf(port, servers)  # proxy_buffering off
    return gfb.voro_farm_conf(a, port, admin, servers, "round_robin")


def run_one(a, kind):
    res = {"proxy": kind, "status": "ok", "errors": []}
    gport = hb.free_port()
    g = hb.PROCS.spawn(hb.pin(a.load_core) + [a.gpusim, "--port", str(gport), "--name", "g1", "--models", MODEL,
                                              "--gpus", "8", "--max-batch", "256", "--step-ms", f"{a.step_ms:g}",
                                              "--prefill-ms", "0", "--kv-blocks", "4096"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    px = None
    try:
        if not hb.wait_listening([gport], g, 10.0):
            res["status"], res["detail"] = "traffic failure", "gpusim did not start listening"
            return res
        port, admin = hb.free_port(), hb.free_port()
        px = hb.Proxy(kind, proxy_conf(a, kind, port, admin, gport), [port], a.proxy_core, voro=a.voro, tag="ssebench")
        why = px.start()
        if why:
            res["status"], res["detail"] = "failed to start", why
            return res
        warm, err, _ = run_load(a, port, WARM_STREAMS, 30)
        if err or warm["completed"] != WARM_STREAMS:
            res["status"] = "traffic failure"
            res["errors"].append(f"warm-up: {err or warm['errors']}")
            return res
        rss0 = proc_kib(px.pid, "VmRSS")
        c0 = hb.cpu_ticks(px.pid)
        peak = [0.0]

        def sample():
            v = gpusim_running(gport)
            if v is not None:
                peak[0] = max(peak[0], v)
        t0 = time.monotonic()
        out, err, cmd = run_load(a, port, a.streams, a.stream_timeout, sample)
        wall = time.monotonic() - t0
        c1 = hb.cpu_ticks(px.pid)
        hwm = proc_kib(px.pid, "VmHWM")
        res["command"] = cmd
        if err:
            res["status"] = "traffic failure"
            res["errors"].append(err)
            return res
        res.update(streams=a.streams, completed=out["completed"], tokens=out["tokens"], stream_errors=out["errors"],
                   stream_p50_s=out["p50_s"], stream_max_s=out["max_s"], all_sent_s=out["open_s"],
                   peak_running=peak[0], wall_s=round(wall, 2), rss_before_kib=rss0, rss_peak_kib=hwm)
        if rss0 is not None and hwm is not None:
            res["mem_per_stream_bytes"] = (hwm - rss0) * 1024.0 / a.streams
        if c0 is not None and c1 is not None:
            res["proxy_cpu_s"] = (c1 - c0) / hb.CLK_TCK
            if out["tokens"]:
                res["cpu_us_per_token"] = 1e6 * res["proxy_cpu_s"] / out["tokens"]
        if out["completed"] != a.streams or out["errors"]:
            res["status"] = "traffic failure"
            res["errors"].append(f"{out['completed']} of {a.streams} streams complete within {a.stream_timeout:g} s; "
                                 f"errors {out['errors']}")
        if not px.alive():
            res["status"] = "traffic failure"
            res["errors"].append(f"proxy died; stderr tail:\n{px.stderr_tail()}")
        return res
    finally:
        if px is not None:
            px.stop()
        hb.PROCS.stop(g, grace=3.0)


def median_key(runs, key):
    vals = [r[key] for r in runs if r["status"] == "ok" and r.get(key) is not None]
    return statistics.median(vals) if vals else None


def f2(v, nd=1):
    return "—" if v is None else f"{v:,.{nd}f}"


def markdown(s):
    L = [f"{s['settings']['streams']} concurrent SSE streams of {s['settings']['tokens']} tokens, one gpusim "
         f"(step {s['settings']['step_ms']:g} ms), {s['settings']['repeats']} repeats; medians of the runs in which "
         f"every stream completed.\n"]
    head = ["proxy", "memory per stream (bytes)", "proxy CPU per token (µs)", "peak RSS (MiB)", "peak running",
            "stream p50 s", "runs ok", "status"]
    L += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p, m in s["medians"].items():
        L.append("| " + " | ".join([hb.LABEL[p], f2(m["mem_per_stream_bytes"], 0), f2(m["cpu_us_per_token"], 2),
                                    f2(m["rss_peak_kib"] / 1024 if m["rss_peak_kib"] else None),
                                    f2(m["peak_running"], 0), f2(m["stream_p50_s"], 2), str(m["runs_ok"]),
                                    s["status"][p][:200].replace("|", "/")]) + " |")
    L.append("")
    for name, r in s["ratios"].items():
        L.append(f"- {name}: memory per stream {f2(r['mem_per_stream_bytes'], 2)} x, "
                 f"CPU per token {f2(r['cpu_us_per_token'], 2)} x")
    for p, st in s["status"].items():
        if not st.startswith("ok"):
            L.append(f"- {hb.LABEL.get(p, p)}: {st}")
    return "\n".join(L) + "\n"


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpusim", required=True, help="path of the gpusim binary")
    ap.add_argument("--voro", help="path of the voro binary (Voro runs only when given)")
    ap.add_argument("--require-voro", action="store_true", help="exit non-zero when Voro fails to start")
    ap.add_argument("--voro-io-model", default="io_uring", choices=hb.IO_MODELS)
    ap.add_argument("--load", default=DEFAULT_LOAD, help="path of tests/integration/scale_load.py")
    ap.add_argument("--proxies", default=",".join(PROXIES))
    ap.add_argument("--streams", type=int, default=2000)
    ap.add_argument("--tokens", type=int, default=20)
    ap.add_argument("--step-ms", type=float, default=60.0,
                    help="gpusim base step: at a full 256 batch a step takes ~6 x this, a stream --tokens steps")
    ap.add_argument("--stream-timeout", type=float, default=30.0, help="every stream must end within this")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="short run (< 60 s): 200 streams, 1 repeat")
    ap.add_argument("--proxy-core", default="0")
    ap.add_argument("--load-core", default="1")
    ap.add_argument("--json-out", default="sse_bench_results.json")
    ap.add_argument("--md-out", default="sse_bench_results.md")
    a = ap.parse_args(argv)
    if a.smoke:
        a.streams, a.tokens, a.step_ms, a.repeats, a.stream_timeout = 200, 10, 5.0, 1, 30.0
    if not (1 <= a.streams <= 8000 and 1 <= a.tokens <= 4096 and 0 <= a.step_ms <= 1000 and 1 <= a.repeats <= 20
            and 1 <= a.stream_timeout <= 3600):
        ap.error("parameter out of range")
    return a


def main(argv):
    a = parse_args(argv)
    command = shlex.join([sys.executable, os.path.abspath(__file__)] + argv)
    hb.install_cleanup()
    a.gpusim, a.load = os.path.abspath(a.gpusim), os.path.abspath(a.load)
    if a.voro:
        a.voro = os.path.abspath(a.voro)
    if not os.access(a.gpusim, os.X_OK) or not os.path.exists(a.load):
        hb.log(f"sse_bench: {a.gpusim} or {a.load} missing")
        return 2
    if (os.cpu_count() or 1) < 2 or not shutil.which("taskset"):
        hb.log("sse_bench: fewer than 2 CPUs or no taskset: running unpinned")
        a.proxy_core = a.load_core = None
    hb.pin_self(a.load_core, "sse_bench")
    present, status, missing = hb.select_proxies([p.strip() for p in a.proxies.split(",") if p.strip()], a.voro,
                                                 "sse_bench")
    if "direct" in present:
        present.remove("direct")
    for p, st in status.items():
        hb.log(f"sse_bench: {hb.LABEL[p]} {st}")
    runs = {p: [] for p in present}
    started = time.monotonic()
    try:
        for rep in range(a.repeats):
            order = present[rep % len(present):] + present[:rep % len(present)] if present else []
            for p in order:
                if any(r["status"] == "failed to start" for r in runs[p]):
                    continue
                t0 = time.monotonic()
                r = run_one(a, p)
                r.update(repeat=rep + 1, seconds=round(time.monotonic() - t0, 1))
                runs[p].append(r)
                hb.log(f"sse_bench: repeat {rep + 1}/{a.repeats} {hb.LABEL[p]}: {r['status']} ({r['seconds']} s) "
                       f"completed {r.get('completed')}/{a.streams}, tokens {r.get('tokens')}, "
                       f"memory/stream {f2(r.get('mem_per_stream_bytes'), 0)} B, "
                       f"CPU/token {f2(r.get('cpu_us_per_token'), 2)} µs, peak running {r.get('peak_running')}, "
                       f"RSS {r.get('rss_before_kib')} -> peak {r.get('rss_peak_kib')} KiB")
                for e in r["errors"] + ([r["detail"]] if "detail" in r else []):
                    hb.log(f"    {e}")
    finally:
        hb.cleanup()

    failed = missing  # a peer program absent in strict mode (CI) fails the run
    for p in present:
        bad = [r for r in runs[p] if r["status"] != "ok"]
        if not bad:
            status[p] = f"ok ({len(runs[p])} runs)"
            continue
        first = bad[0]
        if first["status"] == "failed to start":
            status[p] = "failed to start: " + first.get("detail", "").replace("\n", " | ")[:600]
            failed = True  # Voro is always required, and so is every peer that was present
        else:
            status[p] = f"{first['status']} in {len(bad)} of {len(runs[p])} runs: " + \
                "; ".join(first["errors"] + [first.get("detail", "")])[:600].replace("\n", " | ")
            failed = True
    keys = ("mem_per_stream_bytes", "cpu_us_per_token", "rss_peak_kib", "peak_running", "stream_p50_s")
    meds = {p: dict({k: median_key(runs[p], k) for k in keys}, runs_ok=sum(r["status"] == "ok" for r in runs[p]))
            for p in present}
    ratios = {}
    for other in ("haproxy", "nginx"):
        if "voro" in meds and other in meds:
            ratios[f"Voro/{hb.LABEL[other]}"] = {
                k: (meds["voro"][k] / meds[other][k] if meds["voro"][k] is not None and meds[other][k] else None)
                for k in ("mem_per_stream_bytes", "cpu_us_per_token")}
    env = dict(hb.environment())
    for p in ("haproxy", "nginx"):
        if p in present:
            env[p] = hb.tool_version([p, "-v"])
    summary = {
        "command": command,
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "elapsed_s": round(time.monotonic() - started, 1),
        "settings": {k: getattr(a, k) for k in ("smoke", "streams", "tokens", "step_ms", "repeats", "stream_timeout",
                                               "proxy_core", "load_core", "voro_io_model")},
        "environment": env,
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
    hb.log(f"sse_bench: {summary['elapsed_s']} s; results in {a.json_out} and {a.md_out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
