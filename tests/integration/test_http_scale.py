"""The HTTP data plane at scale and under abuse (issue 8), driven from separate load processes
(scale_load.py: the descriptor hard limit is per process):
  idle_plus_active  10,000 idle keep-alive clients plus 50 active ones under a 20,000-descriptor limit:
                    the active ones are served, all 10,050 stay connected, memory per idle connection
                    (VmRSS delta / 10,000) is reported and bounded;
  sse_slowloris     2,000 concurrent SSE streams on one worker through gpusim plus 500 slowloris clients
                    (kept in place while the streams run): every stream ends with all its tokens, every
                    slowloris client is cut at the head deadline (408 or a close), peak RSS (VmHWM) stays
                    under a stated bound; select(2) runs 200 streams, 50 slowloris, buffers = 128;
  disconnect_*      a client that leaves while its request waits for the response head (FIN, RST) or
                    mid-stream: gpusim's running count falls back to 0 (cause and effect, bounded poll)
                    and Voro counts the abort in /stats and /metrics.
Every process is killed by PID, also on failure."""
import json
import os
import re
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import time

from voro_harness import IO_MODELS, Runner, Voro, free_port, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
LOAD = os.path.join(HERE, "scale_load.py")

# idle_plus_active
VORO_NOFILE = 20000                 # RLIMIT_NOFILE voro runs under (the limit)
IDLE_CONNS = 10000
ACTIVE_CONNS = 50
ACTIVE_SECONDS = 5.0
MIN_ACTIVE_REQUESTS = 500           # over ACTIVE_SECONDS; nginx does ~100k in that time on this machine
IDLE_PROBES = 100                   # idle connections asked for one more request at the end
IDLE_CONN_MEMORY_BOUND = 1024       # bytes of voro RSS per idle HTTP connection (issue 8: <= 1 KB)
IDLE_MODELS = ("io_uring", "epoll", "poll")  # select stops at FD_SETSIZE (1024 descriptors)

# sse_slowloris
SSE_STREAMS = 2000
SSE_TOKENS = 20
SLOWLORIS = 500
SLOWLORIS_INTERVAL_S = 0.5          # one byte of head every half second
SLOWLORIS_DURATION_S = 6.0          # a cut slowloris client is replaced by a new one for this long
HEAD_TIMEOUT_S = 2.0                # [http] header_timeout of the test config
CUT_SLACK_S = 2.0                   # a slowloris client must be cut within HEAD_TIMEOUT_S + this
SSE_TIMEOUT_S = 20.0                # every stream must end within this
SSE_RSS_BOUND_MIB = 96              # peak RSS (VmHWM) of voro over the whole case
PEAK_SHARE = 0.95                   # share of the streams that must run on gpusim at the same time
SELECT_SSE_STREAMS = 200            # select(2): FD_SETSIZE = 1024 descriptors in all
SELECT_SLOWLORIS = 50
SELECT_BUFFERS = 128                # [server] buffers for select (default 1024 for the others)

# disconnect_*
SLOW_TOKENS = 3000                  # ~30 s of generation at 10 ms a step: far beyond ABORT_WAIT_S
ABORT_WAIT_S = 5.0                  # generous bound on "the running count falls"
ABORT_JSON_KEYS = ("client_aborts", "http_client_aborts")
ABORT_METRIC_RE = re.compile(r"^voro_(?:worker_)?http_client_aborts_total(?:\{[^}]*\})?\s+([0-9.eE+]+)\s*$", re.M)


def gpusim_binary(build_dir):
    return os.path.join(build_dir, "tests", "gpusim", "gpusim")


def nofile(n):
    def fn():
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        lim = min(n, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (lim, lim))
    return fn


class Gpusim:
    """One gpusim on a free loopback port with its descriptor soft limit raised; stderr to a file."""

    def __init__(self, binary, *extra):
        self.port = free_port()
        self.log = open(os.devnull, "wb")
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--name", "g1", *extra],
                                     stdout=subprocess.DEVNULL, stderr=self.log, preexec_fn=nofile(VORO_NOFILE))
        wait_until(self._up, timeout=10, what="gpusim listening")

    def _up(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"gpusim exited with {self.proc.returncode}")
        socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        return True

    def metrics(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        try:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n")
            data = b""
            for _ in range(10000):
                d = s.recv(65536)
                if not d:
                    break
                data += d
        finally:
            s.close()
        out = {}
        for line in data.decode(errors="replace").split("\r\n\r\n", 1)[-1].splitlines():
            m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$", line)
            if m:
                out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(3))
        return out

    def running(self):
        return self.metrics()["vllm:num_requests_running"]

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def voro_conf(port, gport, extra_http="", extra_server=""):
    return (f"[server]\nthreads = 1\n{extra_server}[node]\nadmin_address = {{admin}}\n"
            f"[timeouts]\nidle = 10m\ndrain = 1s\n"
            f"[http]\nheader_timeout = {int(HEAD_TIMEOUT_S * 1000)}ms\nkeepalive_timeout = 5m\n{extra_http}"
            f"[listener api]\nmode = http\nbind = 127.0.0.1:{port}\npool = gpu\n"
            f"[pool gpu]\nhealth_check = none\nserver = g1 127.0.0.1:{gport}\n")


def proc_status(pid, key):
    """A kB field of /proc/PID/status (VmRSS, VmHWM) in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {key} in /proc/{pid}/status")


class Load:
    """One scale_load.py process; its JSON lines are read with a bounded wait."""

    def __init__(self, *args, stdin=False):
        self.proc = subprocess.Popen([sys.executable, LOAD, *[str(a) for a in args]], stdout=subprocess.PIPE,
                                     stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)

    def line(self, timeout, idle=None):
        """The next JSON report; idle() is called every ~0.2 s meanwhile (sampling)."""
        deadline = time.monotonic() + timeout
        buf = b""
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], max(0.0, min(0.2, deadline - time.monotonic())))
            if not r and idle is not None:
                idle()
            if r:
                c = os.read(self.proc.stdout.fileno(), 1)
                if not c:
                    raise AssertionError("load process ended: " + self.proc.stderr.read().decode(errors="replace")[-2000:])
                if c == b"\n":
                    return json.loads(buf)
                buf += c
        raise AssertionError(f"no report from the load process within {timeout:.0f} s")

    def send(self, cmd):
        self.proc.stdin.write(cmd.encode() + b"\n")
        self.proc.stdin.flush()

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for f in (self.proc.stdout, self.proc.stdin, self.proc.stderr):
            if f:
                f.close()


def report(name, **kw):
    print(f"  {name}: " + ", ".join(f"{k}={v}" for k, v in kw.items()), flush=True)


# ---------------------------------------------------------------- idle + active

def case_idle_plus_active(r, model):
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard >= VORO_NOFILE, f"the descriptor hard limit {hard} is below the {VORO_NOFILE} this case needs"
    g = Gpusim(gpusim_binary(r.args.build_dir))
    v = idle = None
    problems = []
    try:
        port = free_port()
        v = Voro(r.args.voro, voro_conf(port, g.port), io_model=model, preexec_fn=nofile(VORO_NOFILE))
        warm = Load("active", "--port", port, "--conns", ACTIVE_CONNS, "--seconds", 1)
        try:
            w = warm.line(30)
        finally:
            warm.close()
        assert w["requests"] > 0 and not w["errors"], f"warm-up through voro failed: {w}"
        rss0 = proc_status(v.proc.pid, "VmRSS")
        idle = Load("idle", "--port", port, "--count", IDLE_CONNS, "--setup-timeout", 60, stdin=True)
        ready = idle.line(90)
        rss1 = proc_status(v.proc.pid, "VmRSS")
        per_conn = (rss1 - rss0) / max(1, ready["held"])
        act = Load("active", "--port", port, "--conns", ACTIVE_CONNS, "--seconds", ACTIVE_SECONDS)
        try:
            a = act.line(ACTIVE_SECONDS + 60)
        finally:
            act.close()
        idle.send("check")
        chk = idle.line(30)
        idle.send(f"probe {IDLE_PROBES}")
        probe = idle.line(60)
        report(f"idle_plus_active[{model}]", idle_held=f"{ready['held']}/{IDLE_CONNS}", idle_errors=ready["errors"],
               active_requests=a["requests"], active_rps=a["rps"], active_errors=a["errors"],
               idle_open_after=chk["open"], probes_ok=f"{probe['ok']}/{IDLE_PROBES}",
               rss_before_kib=rss0 // 1024, rss_after_kib=rss1 // 1024, bytes_per_idle_conn=round(per_conn))
        if ready["held"] != IDLE_CONNS or ready["errors"]:
            problems.append(f"{ready['held']} of {IDLE_CONNS} idle connections were served and held "
                            f"(errors {ready['errors']})")
        if a["requests"] < MIN_ACTIVE_REQUESTS or a["errors"]:
            problems.append(f"active clients: {a['requests']} requests in {ACTIVE_SECONDS:g} s (minimum "
                            f"{MIN_ACTIVE_REQUESTS}), errors {a['errors']}")
        if chk["open"] != IDLE_CONNS:
            problems.append(f"{chk['open']} idle connections still open after the active load, expected {IDLE_CONNS}")
        if probe["ok"] != IDLE_PROBES:
            problems.append(f"{probe['ok']} of {IDLE_PROBES} idle connections answered a later request ({probe['errors']})")
        if per_conn > IDLE_CONN_MEMORY_BOUND:
            problems.append(f"{per_conn:.0f} bytes of RSS per idle connection, bound {IDLE_CONN_MEMORY_BOUND}")
        assert not problems, "; ".join(problems)
    finally:
        try:
            if idle is not None:
                try:
                    idle.send("quit")
                except OSError:
                    pass
                idle.close()
        finally:
            try:
                if v is not None:
                    v.close()
            finally:
                g.close()


# ---------------------------------------------------------------- SSE + slowloris

def case_sse_slowloris(r, model):
    # select(2) holds ~1/10 of the load: its buffer pool is scaled down with it, so the case still needs
    # more buffers than the pool has if each request keeps one.
    streams, slow, server = (SELECT_SSE_STREAMS, SELECT_SLOWLORIS, f"buffers = {SELECT_BUFFERS}\n") \
        if model == "select" else (SSE_STREAMS, SLOWLORIS, "")
    # 8 GPUs x 256 batch slots hold every stream at once; a 45 ms step (~275 ms at a 256 batch) makes each
    # stream last ~5.5 s, longer than opening them all takes on a busy machine, so all are open through Voro
    # together: the peak of gpusim's running count, sampled meanwhile, checks that.
    g = Gpusim(gpusim_binary(r.args.build_dir), "--gpus", "8", "--max-batch", "256", "--step-ms", "45",
               "--prefill-ms", "0", "--kv-blocks", "4096")
    v = sl = sse = None
    problems = []
    try:
        port = free_port()
        v = Voro(r.args.voro, voro_conf(port, g.port, extra_server=server), io_model=model,
                 preexec_fn=nofile(VORO_NOFILE))
        rss0 = proc_status(v.proc.pid, "VmRSS")
        # The slowloris clients stay in place (a cut one is replaced) while the streams run.
        sl = Load("slowloris", "--port", port, "--count", slow, "--interval", SLOWLORIS_INTERVAL_S,
                  "--duration", SLOWLORIS_DURATION_S, "--timeout", HEAD_TIMEOUT_S + CUT_SLACK_S + 10)
        conn = sl.line(60)
        assert conn["count"] == slow, f"slowloris clients could not all connect: {conn}"
        sse = Load("sse", "--port", port, "--streams", streams, "--tokens", SSE_TOKENS, "--timeout", SSE_TIMEOUT_S)
        peak = [0.0]

        def sample():
            peak[0] = max(peak[0], g.running())
        s = sse.line(SSE_TIMEOUT_S + 60, idle=sample)
        lo = sl.line(SLOWLORIS_DURATION_S + HEAD_TIMEOUT_S + CUT_SLACK_S + 30)
        hwm = proc_status(v.proc.pid, "VmHWM")
        report(f"sse_slowloris[{model}]", streams_completed=f"{s['completed']}/{streams}", tokens=s["tokens"],
               stream_errors=s["errors"], stream_p50_s=s["p50_s"], stream_max_s=s["max_s"],
               all_sent_after_s=s["open_s"], peak_running=peak[0],
               slowloris_cut=f"{lo['cut']}/{lo['count']}", slowloris_how=lo["how"], cut_max_s=lo["cut_max_s"],
               rss_start_mib=round(rss0 / 2**20, 1), rss_peak_mib=round(hwm / 2**20, 1))
        if peak[0] < PEAK_SHARE * streams:
            problems.append(f"at most {peak[0]:.0f} of {streams} streams ran on gpusim at once "
                            f"(expected >= {PEAK_SHARE:g} x)")
        if s["completed"] != streams or s["tokens"] != streams * SSE_TOKENS or s["errors"]:
            problems.append(f"{s['completed']} of {streams} streams completed with all {SSE_TOKENS} tokens "
                            f"within {SSE_TIMEOUT_S:g} s (errors {s['errors']})")
        bad_how = {k: n for k, n in lo["how"].items() if k not in ("408", "close", "reset")}
        if lo["not_cut"] or lo["cut"] != lo["count"] or lo["count"] < slow or bad_how or lo["errors"]:
            problems.append(f"slowloris: {lo['cut']} of {lo['count']} cut, {lo['not_cut']} still open; how {lo['how']}"
                            f"; errors {lo['errors']}")
        if lo["cut_max_s"] is not None and lo["cut_max_s"] > HEAD_TIMEOUT_S + CUT_SLACK_S:
            problems.append(f"slowloris: the last was cut {lo['cut_max_s']} s after its first byte, header_timeout "
                            f"{HEAD_TIMEOUT_S:g} s + {CUT_SLACK_S:g} s slack")
        if hwm > SSE_RSS_BOUND_MIB * 2**20:
            problems.append(f"peak RSS {hwm / 2**20:.1f} MiB over the bound {SSE_RSS_BOUND_MIB} MiB")
        assert not problems, "; ".join(problems)
    finally:
        try:
            for p in (sse, sl):
                if p is not None:
                    p.close()
        finally:
            try:
                if v is not None:
                    v.close()
            finally:
                g.close()


# ---------------------------------------------------------------- client disconnect

def abort_counts(v):
    """(sum of client_aborts fields in /stats JSON or None, sum of the metric samples or None)."""
    def walk(o):
        if isinstance(o, dict):
            tot = None
            for k, val in o.items():
                sub = val if k in ABORT_JSON_KEYS and isinstance(val, (int, float)) else walk(val)
                if sub is not None:
                    tot = (tot or 0) + sub
            return tot
        if isinstance(o, list):
            vals = [x for x in (walk(e) for e in o) if x is not None]
            return sum(vals) if vals else None
        return None
    js = walk(v.stats())
    st, body = v.get("/metrics")
    assert st == 200, st
    found = ABORT_METRIC_RE.findall(body.decode(errors="replace"))
    return js, (sum(float(x) for x in found) if found else None)


def chat_request(max_tokens, stream):
    body = json.dumps({"model": "gpusim-8b", "messages": [{"role": "user", "content": "take your time"}],
                       "max_tokens": max_tokens, "stream": stream}).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: scale\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body


def disconnect_case(r, model, stream, rst):
    # --slow 5 on a 2 ms step: 10 ms a token, so SLOW_TOKENS run ~30 s unless cancelled.
    g = Gpusim(gpusim_binary(r.args.build_dir), "--step-ms", "2", "--slow", "5")
    v = None
    s = None
    try:
        port = free_port()
        v = Voro(r.args.voro, voro_conf(port, g.port), io_model=model)
        j0, m0 = abort_counts(v)
        c0 = g.metrics().get("gpusim_requests_cancelled_total", 0.0)
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(chat_request(SLOW_TOKENS, stream))
        wait_until(lambda: g.running() == 1, timeout=10, what="the request running on gpusim")
        if stream:
            # Mid-stream: the head and at least one token event have reached the client.
            got = b""
            deadline = time.monotonic() + 10
            while b"data: " not in got and time.monotonic() < deadline:
                got += s.recv(65536)
            assert got.startswith(b"HTTP/1.1 200") and b"data: " in got, got[:200]
        else:
            s.settimeout(0.3)
            try:
                early = s.recv(1)
            except socket.timeout:
                early = b""
            assert early == b"", f"the response started before the client left: {early!r}"
        if rst:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        s = None
        left = time.monotonic()
        fell = True
        try:
            wait_until(lambda: g.running() == 0, timeout=ABORT_WAIT_S, interval=0.01,
                       what="gpusim's running count to fall after the client left")
        except AssertionError:
            fell = False
        fell_s = time.monotonic() - left
        c1 = g.metrics().get("gpusim_requests_cancelled_total", 0.0)
        try:
            wait_until(lambda: (lambda jm: jm[0] is not None and jm[1] is not None and jm[0] > (j0 or 0)
                                and jm[1] > (m0 or 0))(abort_counts(v)), timeout=2, what="abort counted")
        except AssertionError:
            pass
        j1, m1 = abort_counts(v)
        name = "stream" if stream else ("head_rst" if rst else "head_fin")
        report(f"disconnect_{name}[{model}]", running_fell=fell, after_s=round(fell_s, 3) if fell else None,
               gpusim_cancelled=c1 - c0, stats_client_aborts=f"{j0}->{j1}", metric_client_aborts=f"{m0}->{m1}")
        problems = []
        if not fell:
            problems.append(f"gpusim still runs the request {ABORT_WAIT_S:g} s after the client left")
        elif c1 - c0 < 1:
            problems.append("gpusim's running count fell but it counted no cancellation")
        if j1 is None:
            problems.append(f"/stats has no {' or '.join(ABORT_JSON_KEYS)} counter")
        elif j1 - (j0 or 0) < 1:
            problems.append(f"/stats client_aborts did not count the abort ({j0} -> {j1})")
        if m1 is None:
            problems.append("/metrics has no voro_http_client_aborts_total (or voro_worker_http_client_aborts_total)")
        elif m1 - (m0 or 0) < 1:
            problems.append(f"/metrics client aborts did not count the abort ({m0} -> {m1})")
        assert not problems, "; ".join(problems)
    finally:
        try:
            if s is not None:
                s.close()
            if v is not None:
                v.close()
        finally:
            g.close()


def case_disconnect_head_fin(r, model):
    disconnect_case(r, model, stream=False, rst=False)


def case_disconnect_head_rst(r, model):
    disconnect_case(r, model, stream=False, rst=True)


def case_disconnect_stream(r, model):
    disconnect_case(r, model, stream=True, rst=False)


def main():
    r = Runner()
    if not os.path.exists(gpusim_binary(r.args.build_dir)):
        print("gpusim is not built", flush=True)
        r.failed += 1
        r.finish()
    for model in r.models:
        if model not in IO_MODELS:
            continue
        if model in IDLE_MODELS:
            r.run(f"idle_plus_active[{model}]", case_idle_plus_active, r, model)
        r.run(f"sse_slowloris[{model}]", case_sse_slowloris, r, model)
        for c in (case_disconnect_head_fin, case_disconnect_head_rst, case_disconnect_stream):
            r.run(f"{c.__name__[5:]}[{model}]", c, r, model)
    r.finish()


if __name__ == "__main__":
    main()
