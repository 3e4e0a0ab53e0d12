#!/usr/bin/env python3
"""uring_splice_bench: iperf3 through one Voro worker on io_uring with splice on, for two voro
binaries run alternately (A B A B ...): throughput and Gbit per proxy CPU-second (io-wq threads
included, they are threads of the process). Used to choose between IORING_OP_SPLICE and splice(2)
called from the loop (build one binary with -DURING_SPLICE_DIRECT=0). Loopback only; every
process is killed by PID.

  uring_splice_bench.py --voro-a build/voro --voro-b /tmp/voro-iowq [--time 5] [--repeats 3] [--parallel 1,8]
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wait_port(port, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} not listening after {timeout}s")


def run_one(voro, iperf, secs, parallel, proxy_core, load_core, tmp):
    sport, lport, aport = free_port(), free_port(), free_port()
    conf = os.path.join(tmp, "voro.conf")
    with open(conf, "w") as f:
        f.write(f"[server]\nthreads = 1\nsplice = on\n[node]\nadmin_address = 127.0.0.1:{aport}\n"
                f"[listener main]\nmode = tcp\nbind = 127.0.0.1:{lport}\npool = app\n"
                f"[pool app]\nhealth_check = none\nserver = s 127.0.0.1:{sport}\n")
    procs = []
    try:
        srv = subprocess.Popen(["taskset", "-c", load_core, iperf, "-s", "-B", "127.0.0.1", "-p", str(sport)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(srv)
        v = subprocess.Popen(["taskset", "-c", proxy_core, voro, "-c", conf, "--io-model", "io_uring"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(v)
        wait_port(sport, srv)
        wait_port(aport, v)
        c0 = cpu_s(v.pid)
        # No check=True: iperf3 -J reports its errors in the JSON.
        out = subprocess.run(["taskset", "-c", load_core, iperf, "-c", "127.0.0.1", "-p", str(lport), "-t", str(secs),
                              "-P", str(parallel), "-J"], capture_output=True, timeout=secs + 30).stdout
        c1 = cpu_s(v.pid)
        doc = json.loads(out)
        if "error" in doc or "sum_received" not in doc.get("end", {}):
            raise RuntimeError(f"iperf3 through {voro}: {doc.get('error', 'no result')}")
        bps = doc["end"]["sum_received"]["bits_per_second"]
        gbps = bps / 1e9
        return gbps, gbps * secs / max(c1 - c0, 1e-3)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--voro-a", required=True)
    ap.add_argument("--voro-b", required=True)
    ap.add_argument("--label-a", default="A")
    ap.add_argument("--label-b", default="B")
    ap.add_argument("--time", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--parallel", default="1,8")
    ap.add_argument("--proxy-core", default="0")
    ap.add_argument("--load-core", default="1")
    a = ap.parse_args()
    iperf = shutil.which("iperf3")
    if not iperf:
        sys.exit("iperf3 is not installed (scripts/install-deps.sh)")
    tmp = tempfile.mkdtemp(prefix="splice-bench-")
    try:
        for par in [int(x) for x in a.parallel.split(",")]:
            res = {a.label_a: [], a.label_b: []}
            for _ in range(a.repeats):
                for lab, binary in ((a.label_a, a.voro_a), (a.label_b, a.voro_b)):
                    for attempt in range(3):
                        try:
                            res[lab].append(run_one(binary, iperf, a.time, par, a.proxy_core, a.load_core, tmp))
                            break
                        except RuntimeError as e:
                            print(f"  retry ({lab}): {e}", flush=True)
            for lab, runs in res.items():
                g = [r[0] for r in runs]
                e = [r[1] for r in runs]
                print(f"-P {par} {lab:>10}: {statistics.median(g):6.2f} Gbit/s (runs {', '.join(f'{x:.2f}' for x in g)}), "
                      f"{statistics.median(e):6.2f} Gbit per proxy CPU-s (runs {', '.join(f'{x:.2f}' for x in e)})",
                      flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
