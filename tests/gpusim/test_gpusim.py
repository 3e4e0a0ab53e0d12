"""Integration test of gpusim, the simulated OpenAI-compatible inference server: drives the real
binary over loopback with the standard library's HTTP client and raw sockets. Every process is
killed by PID; the last line says 'N passed, N failed'."""
import argparse
import http.client
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import traceback

ARGS = None


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Sim:
    """One gpusim process on a free loopback port."""

    def __init__(self, *extra):
        self.port = free_port()
        self.proc = subprocess.Popen([ARGS.gpusim, "--port", str(self.port), *extra],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until(lambda: self.request("GET", "/health")[0] == 200, what="gpusim /health")

    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=10):
        c = self.conn(timeout)
        try:
            data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
            h = {"Content-Type": "application/json"} if data is not None else {}
            h.update(headers or {})
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            return r.status, r.read(), {k.lower(): v for k, v in r.getheaders()}
        finally:
            c.close()

    def json(self, method, path, body=None, timeout=10):
        st, data, hdrs = self.request(method, path, body, timeout=timeout)
        return st, json.loads(data), hdrs

    def metrics(self):
        st, data, _ = self.request("GET", "/metrics")
        assert st == 200, st
        return parse_metrics(data.decode())

    def stop(self):
        """SIGTERM: gpusim shuts down cleanly (exit 0), which under ASan includes the leak check."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("gpusim did not stop on SIGTERM")
        err = self.proc.stderr.read().decode(errors="replace")
        self.proc.stderr.close()
        return self.proc.returncode, err

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self.proc.stderr.closed:
            self.proc.stderr.close()


SAMPLE_RE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?P<labels>[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"'
                       r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*)?\})? (?P<value>\S+)$')


def parse_metrics(text):
    """Strict: every sample line is `name{labels} value` with a float value. Returns
    {(name, frozenset(labels)): value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        assert m, f"bad sample line: {line!r}"
        labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"', m.group("labels") or ""))
        v = float(m.group("value"))
        assert not math.isnan(v), line
        out[(m.group("name"), labels)] = v
    return out


def metric(ms, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    want = set(labels.items())
    vals = [v for (n, ls), v in ms.items() if n == name and want <= set(ls)]
    assert vals, f"metric {name} {labels} missing"
    return sum(vals)


CASES = []
START_LINE = re.compile(r"^gpusim: \S+ listening on \S+ \(")


def check_clean_stop(sim):
    """SIGTERM: exit 0 and nothing on stderr but the start line (no error, no sanitizer report)."""
    rc, err = sim.stop()
    assert rc == 0, f"gpusim exit code {rc} on SIGTERM: {err[-2000:]}"
    noise = [ln for ln in err.splitlines() if ln.strip() and not START_LINE.match(ln)]
    assert not noise, f"gpusim printed more than its start line: {err[-2000:]}"


def case(fn):
    CASES.append(fn)
    return fn


def with_sim(*extra):
    def deco(fn):
        def run():
            sim = Sim(*extra)
            try:
                fn(sim)
                check_clean_stop(sim)
            finally:
                sim.kill()
        run.__name__ = fn.__name__
        return run
    return deco


MODELS = "llama,big@v2,lora:llama-sql"


@case
@with_sim("--models", MODELS, "--name", "sim-a", "--step-ms", "1", "--prefill-ms", "0")
def test_models_list(sim):
    st, body, hdrs = sim.json("GET", "/v1/models")
    assert st == 200 and body["object"] == "list", body
    ids = [m["id"] for m in body["data"]]
    assert ids == ["llama", "big", "llama-sql"], ids
    by = {m["id"]: m for m in body["data"]}
    assert by["llama-sql"]["parent"] == "llama" and by["llama"]["parent"] is None, by
    assert by["big"]["version"] == "v2" and all(m["object"] == "model" for m in body["data"])
    assert hdrs["x-gpusim-name"] == "sim-a"


@case
@with_sim("--models", MODELS, "--name", "sim-a", "--step-ms", "1", "--prefill-ms", "0")
def test_completion_shape(sim):
    st, b, hdrs = sim.json("POST", "/v1/completions", {"model": "llama", "prompt": "x" * 40, "max_tokens": 7})
    assert st == 200, b
    assert b["object"] == "text_completion" and b["model"] == "llama" and b["id"].startswith("cmpl-"), b
    assert b["system_fingerprint"] == "sim-a" and hdrs["x-gpusim-name"] == "sim-a"
    ch = b["choices"]
    assert len(ch) == 1 and ch[0]["finish_reason"] == "length" and ch[0]["index"] == 0, ch
    assert ch[0]["text"].split() == [f"tok{i}" for i in range(1, 8)], ch
    assert b["usage"] == {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17}, b["usage"]
    # chat, n=2, versioned model
    st, b, hdrs = sim.json("POST", "/v1/chat/completions",
                           {"model": "big", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 3,
                            "n": 2})
    assert st == 200 and b["object"] == "chat.completion", b
    assert [c["message"]["content"] for c in b["choices"]] == ["tok1 tok2 tok3"] * 2, b
    assert b["choices"][0]["message"]["role"] == "assistant"
    assert b["usage"]["completion_tokens"] == 6 and b["usage"]["prompt_tokens"] == 2, b["usage"]
    assert hdrs["x-gpusim-model-version"] == "v2", hdrs


@case
@with_sim("--step-ms", "50", "--prefill-ms", "0")
def test_stream_chat_incremental(sim):
    n = 20
    c = sim.conn()
    try:
        c.request("POST", "/v1/chat/completions", body=json.dumps(
            {"model": "gpusim-8b", "messages": [{"role": "user", "content": "hi"}], "max_tokens": n,
             "stream": True, "stream_options": {"include_usage": True}}),
            headers={"Content-Type": "application/json"})
        r = c.getresponse()
        assert r.status == 200 and r.getheader("Content-Type").startswith("text/event-stream")
        events = []
        checked_early = False
        for _ in range(n * 4 + 10):  # bounded: each event is 2 lines
            line = r.readline()
            if not line:
                break
            line = line.decode().rstrip("\n")
            if not line:
                continue
            assert line.startswith("data: "), line
            events.append(line[6:])
            if len(events) == 1:
                # Causality, not timing: the first token reached us while the server was still
                # generating (it needs n steps of 50 ms), so it was not buffered to the end.
                ms = sim.metrics()
                assert metric(ms, "vllm:generation_tokens_total") < n, "first chunk arrived only at the end"
                assert metric(ms, "vllm:num_requests_running") == 1
                checked_early = True
            if events[-1] == "[DONE]":
                break
        assert checked_early
        assert events[-1] == "[DONE]", events[-3:]
        chunks = [json.loads(e) for e in events[:-1]]
        assert len(chunks) == n + 1, len(chunks)
        toks = chunks[:n]
        assert all(t["object"] == "chat.completion.chunk" and len(t["choices"]) == 1 for t in toks)
        text = "".join(t["choices"][0]["delta"]["content"] for t in toks)
        assert text.split() == [f"tok{i}" for i in range(1, n + 1)], text
        assert toks[0]["choices"][0]["delta"]["role"] == "assistant"
        assert [t["choices"][0]["finish_reason"] for t in toks] == [None] * (n - 1) + ["length"]
        usage = chunks[n]
        assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == n, usage
        assert usage["usage"]["total_tokens"] == n + usage["usage"]["prompt_tokens"]
        assert len({t["id"] for t in chunks}) == 1
    finally:
        c.close()


def raw_request(port, body, path="/v1/completions"):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    data = json.dumps(body).encode()
    s.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data)
    return s


@case
@with_sim("--max-batch", "2", "--step-ms", "20", "--prefill-ms", "0", "--kv-blocks", "100")
def test_metrics_follow_state(sim):
    socks = [raw_request(sim.port, {"model": "gpusim-8b", "prompt": "p" * 400, "max_tokens": 5000})
             for _ in range(5)]
    try:
        def state():
            ms = sim.metrics()
            return (metric(ms, "vllm:num_requests_running"), metric(ms, "vllm:num_requests_waiting"), ms)
        run, wait, ms = wait_until(lambda: (lambda s: s if s[:2] == (2, 3) else None)(state()),
                                   what="running=2 waiting=3")
        kv = metric(ms, "vllm:kv_cache_usage_perc")
        assert 0 < kv <= 1 and kv == metric(ms, "vllm:gpu_cache_usage_perc"), kv
        assert metric(ms, "DCGM_FI_DEV_GPU_UTIL", gpu="0") > 0
        assert metric(ms, "DCGM_FI_DEV_FB_USED", gpu="0") + metric(ms, "DCGM_FI_DEV_FB_FREE", gpu="0") == 81920
        assert metric(ms, "vllm:prompt_tokens_total") == 200  # two admitted prompts of 100 tokens
    finally:
        for s in socks:
            s.close()
    # Client disconnects cancel the sequences and free their batch slots.
    ms = wait_until(lambda: (lambda m: m if metric(m, "vllm:num_requests_running") == 0 and
                             metric(m, "vllm:num_requests_waiting") == 0 else None)(sim.metrics()),
                    what="batch drained after disconnects")
    assert metric(ms, "gpusim_requests_cancelled_total") == 5
    assert metric(ms, "vllm:kv_cache_usage_perc") == 0
    # Afterwards a request is served again, and the latency histograms count it.
    st, b, _ = sim.json("POST", "/v1/completions", {"model": "gpusim-8b", "prompt": "a", "max_tokens": 2})
    assert st == 200 and b["usage"]["completion_tokens"] == 2
    ms = sim.metrics()
    assert metric(ms, "vllm:request_success_total") == 1
    assert metric(ms, "vllm:e2e_request_latency_seconds_count") == 1
    # TTFT: this request, plus any cancelled one that produced a token before its client left.
    ttft = metric(ms, "vllm:time_to_first_token_seconds_bucket", le="+Inf")
    assert 1 <= ttft <= 6 and ttft == metric(ms, "vllm:time_to_first_token_seconds_count"), ttft


@case
@with_sim("--step-ms", "0", "--prefill-ms", "0", "--gpus", "2", "--models", MODELS)
def test_metrics_text_parses(sim):
    sim.json("POST", "/v1/completions", {"model": "llama", "prompt": "abc", "max_tokens": 3})
    st, data, hdrs = sim.request("GET", "/metrics")
    assert st == 200 and hdrs["content-type"].startswith("text/plain")
    ms = parse_metrics(data.decode())
    for name in ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
                 "vllm:gpu_cache_usage_perc", "vllm:prompt_tokens_total", "vllm:generation_tokens_total",
                 "vllm:request_success_total", "vllm:time_to_first_token_seconds_count",
                 "vllm:e2e_request_latency_seconds_sum"):
        metric(ms, name, model_name="llama")
    for name in ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_XID_ERRORS"):
        metric(ms, name, gpu="0")
        metric(ms, name, gpu="1")
    assert metric(ms, "vllm:generation_tokens_total") == 3
    # Histogram buckets are cumulative and end with +Inf == count.
    b = sorted(((float(dict(ls)["le"]), v) for (n, ls), v in ms.items()
                if n == "vllm:time_to_first_token_seconds_bucket"))
    assert all(b[i][1] <= b[i + 1][1] for i in range(len(b) - 1)) and b[-1][0] == math.inf and b[-1][1] == 1


@case
@with_sim("--step-ms", "0", "--prefill-ms", "0")
def test_fail_rate(sim):
    st, b, _ = sim.json("POST", "/control?fail_rate=1")
    assert st == 200 and b["fail_rate"] == 1, b
    for _ in range(5):
        st, b, _ = sim.json("POST", "/v1/chat/completions",
                            {"model": "gpusim-8b", "messages": [{"role": "user", "content": "x"}]})
        assert st == 500 and b["error"]["type"] == "server_error" and "message" in b["error"], (st, b)
    st, b, _ = sim.json("POST", "/v1/embeddings", {"model": "gpusim-8b", "input": "x"})
    assert st == 500, st
    assert sim.request("GET", "/v1/models")[0] == 200  # only inference is failed
    assert metric(sim.metrics(), "gpusim_requests_failed_total") == 6
    st, b, _ = sim.json("POST", "/control", {"fail_rate": 0})
    assert st == 200 and b["fail_rate"] == 0
    assert sim.json("POST", "/v1/completions", {"model": "gpusim-8b", "prompt": "x"})[0] == 200


@case
@with_sim("--step-ms", "0", "--prefill-ms", "0", "--fail-rate", "0.5", "--seed", "42")
def test_fail_rate_deterministic(sim):
    def pattern():
        return [sim.request("POST", "/v1/completions", {"model": "gpusim-8b", "prompt": "x", "max_tokens": 1})[0]
                for _ in range(20)]
    p = pattern()
    assert set(p) == {200, 500}, p
    other = Sim("--step-ms", "0", "--prefill-ms", "0", "--fail-rate", "0.5", "--seed", "42")
    try:
        q = [other.request("POST", "/v1/completions", {"model": "gpusim-8b", "prompt": "x", "max_tokens": 1})[0]
             for _ in range(20)]
        check_clean_stop(other)
    finally:
        other.kill()
    assert p == q, (p, q)


@case
@with_sim("--step-ms", "0", "--models", MODELS)
def test_errors(sim):
    st, b, hdrs = sim.json("POST", "/v1/chat/completions",
                           {"model": "nope", "messages": [{"role": "user", "content": "x"}]})
    assert st == 404 and b["error"]["code"] == "model_not_found" and "`nope`" in b["error"]["message"], b
    assert b["error"]["type"] == "invalid_request_error" and b["error"]["param"] is None
    assert hdrs["x-gpusim-name"] == "gpusim"
    st, b, _ = sim.json("POST", "/v1/chat/completions", b'{"model": "llama", "messages": [')
    assert st == 400 and b["error"]["type"] == "invalid_request_error", b
    st, b, _ = sim.json("POST", "/v1/chat/completions", {"model": "llama"})
    assert st == 400 and b["error"]["param"] == "messages", b
    st, b, _ = sim.json("POST", "/v1/completions", {"prompt": "x"})
    assert st == 400 and b["error"]["param"] == "model", b
    st, b, _ = sim.json("POST", "/v1/completions", {"model": "llama", "prompt": "x", "max_tokens": -1})
    assert st == 400 and b["error"]["param"] == "max_tokens", b
    st, b, _ = sim.json("POST", "/v1/completions", {"model": "llama", "prompt": "x", "stream": "yes"})
    assert st == 400 and b["error"]["param"] == "stream", b
    assert sim.request("GET", "/v1/completions")[0] == 405
    assert sim.request("GET", "/nope")[0] == 404


@case
@with_sim("--step-ms", "0", "--models", "llama")
def test_control_models(sim):
    st, b, _ = sim.json("POST", "/control", {"models": "qwen@v3,lora:qwen-chat"})
    assert st == 200 and b["models"] == ["qwen@v3", "lora:qwen-chat"], b
    st, b, _ = sim.json("GET", "/v1/models")
    assert [m["id"] for m in b["data"]] == ["qwen", "qwen-chat"], b
    assert sim.json("POST", "/v1/completions", {"model": "llama", "prompt": "x"})[0] == 404
    st, b, hdrs = sim.json("POST", "/v1/completions", {"model": "qwen-chat", "prompt": "x", "max_tokens": 2})
    assert st == 200 and b["model"] == "qwen-chat"
    # query-string form, percent-encoded
    st, b, _ = sim.json("POST", "/control?models=a%2Cb%40v2%2Clora%3Aa-sql")
    assert st == 200 and b["models"] == ["a", "b@v2", "lora:a-sql"], b
    st, b, _ = sim.json("GET", "/v1/models")
    assert {m["id"]: m["parent"] for m in b["data"]} == {"a": None, "b": None, "a-sql": "a"}, b
    # invalid knob or value: 400 and nothing changes
    assert sim.json("POST", "/control?models=lora:only")[0] == 400
    assert sim.json("POST", "/control?slow=2&bogus=1")[0] == 400
    assert sim.request("GET", "/control?slow=3")[0] == 405
    st, b, _ = sim.json("GET", "/control")
    assert b["slow"] == 1 and b["models"] == ["a", "b@v2", "lora:a-sql"], b


@case
@with_sim("--step-ms", "10", "--prefill-ms", "0")
def test_slow_knob(sim):
    def timed():
        t = time.monotonic()
        st, _, _ = sim.request("POST", "/v1/completions", {"model": "gpusim-8b", "prompt": "x", "max_tokens": 10})
        assert st == 200
        return time.monotonic() - t
    assert sim.json("POST", "/control?slow=5")[0] == 200
    # 10 steps of 10 ms * 1.02 * 5: at least 0.5 s (a lower bound: it cannot be faster)
    assert timed() >= 0.5


@case
@with_sim("--step-ms", "0")
def test_hang(sim):
    assert sim.json("POST", "/control?hang=1")[0] == 200
    try:
        sim.request("GET", "/health", timeout=0.5)
        raise AssertionError("answered while hanging")
    except (socket.timeout, TimeoutError):
        pass
    assert sim.json("POST", "/control", {"hang": False})[0] == 200
    assert sim.request("GET", "/health")[0] == 200


@case
def test_die():
    sim = Sim("--step-ms", "0")
    try:
        try:
            sim.request("POST", "/control?die=1", timeout=5)
        except (http.client.HTTPException, ConnectionError, OSError):
            pass
        sim.proc.wait(timeout=10)
        assert sim.proc.returncode == 3, sim.proc.returncode
    finally:
        sim.kill()


@case
@with_sim("--step-ms", "0", "--embed-dim", "64")
def test_embeddings(sim):
    st, b, _ = sim.json("POST", "/v1/embeddings", {"model": "gpusim-8b", "input": ["a b c d", "x", "a b c d"]})
    assert st == 200 and b["object"] == "list" and len(b["data"]) == 3, b
    v = [d["embedding"] for d in b["data"]]
    assert all(len(e) == 64 for e in v) and v[0] == v[2] and v[0] != v[1]
    assert abs(sum(x * x for x in v[0]) - 1) < 1e-3
    assert [d["index"] for d in b["data"]] == [0, 1, 2] and b["usage"]["prompt_tokens"] == 5, b["usage"]
    st, b, _ = sim.json("POST", "/v1/embeddings", {"model": "gpusim-8b", "input": "x", "encoding_format": "base64"})
    assert st == 200 and isinstance(b["data"][0]["embedding"], str) and len(b["data"][0]["embedding"]) == 344


def read_response(f):
    """Reads one HTTP/1.1 response (Content-Length framed) from a socket file."""
    status = f.readline()
    if not status:
        return None
    hdrs = {}
    while True:
        line = f.readline().decode().rstrip("\r\n")
        if not line:
            break
        k, v = line.split(":", 1)
        hdrs[k.strip().lower()] = v.strip()
    body = f.read(int(hdrs.get("content-length", "0")))
    return int(status.split()[1]), hdrs, body


@case
@with_sim("--step-ms", "1", "--prefill-ms", "0")
def test_http_framing(sim):
    # Pipelining: three requests in one write (one chunked body), answered in order.
    bodies = [json.dumps({"model": "gpusim-8b", "prompt": "x", "max_tokens": k}).encode() for k in (3, 1, 2)]
    req = b""
    for i, bd in enumerate(bodies):
        if i == 1:
            req += (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                    b"%x\r\n" % 5 + bd[:5] + b"\r\n" + b"%x\r\n" % (len(bd) - 5) + bd[5:] + b"\r\n0\r\n\r\n")
        else:
            req += b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(bd) + bd
    req += b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", sim.port), timeout=10) as s:
        s.sendall(req)
        f = s.makefile("rb")
        got = [read_response(f) for _ in range(4)]
        assert [g[0] for g in got] == [200] * 4, got
        assert [json.loads(g[2])["usage"]["completion_tokens"] for g in got[:3]] == [3, 1, 2]
        assert got[3][1]["connection"] == "close" and f.read() == b""
    # Oversized head -> 431; oversized body -> 413; garbage -> 400; all close the connection.
    for data, want in ((b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 431),
                       (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", 413),
                       (b"\x16\x03\x01 garbage\r\n\r\n", 400)):
        with socket.create_connection(("127.0.0.1", sim.port), timeout=10) as s:
            s.sendall(data)
            f = s.makefile("rb")
            st, hdrs, body = read_response(f)
            assert st == want and "error" in json.loads(body), (st, body)
            assert f.read() == b""
    # A chunked body over 1 MiB -> 413
    with socket.create_connection(("127.0.0.1", sim.port), timeout=10) as s:
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(20):
                s.sendall(b"10000\r\n" + b" " * 0x10000 + b"\r\n")
        except OSError:
            pass
        st, _, _ = read_response(s.makefile("rb"))
        assert st == 413, st
    # Expect: 100-continue is honoured (curl sends it for larger bodies).
    with socket.create_connection(("127.0.0.1", sim.port), timeout=10) as s:
        bd = bodies[0]
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(bd))
        f = s.makefile("rb")
        assert f.readline().startswith(b"HTTP/1.1 100")
        assert f.readline() == b"\r\n"
        s.sendall(bd)
        assert read_response(f)[0] == 200
    assert sim.request("GET", "/health")[0] == 200


@case
@with_sim("--step-ms", "2", "--prefill-ms", "0", "--max-batch", "4")
def test_disconnect_mid_stream(sim):
    c = sim.conn()
    c.request("POST", "/v1/completions", body=json.dumps(
        {"model": "gpusim-8b", "prompt": "x", "max_tokens": 60000, "stream": True}))
    r = c.getresponse()
    assert r.readline().startswith(b"data: ")
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()
    wait_until(lambda: metric(sim.metrics(), "vllm:num_requests_running") == 0, what="stream cancelled")
    assert metric(sim.metrics(), "gpusim_requests_cancelled_total") == 1
    # HTTP/1.0 stream: no chunked coding, the end of the connection ends the stream.
    with socket.create_connection(("127.0.0.1", sim.port), timeout=10) as s:
        bd = json.dumps({"model": "gpusim-8b", "prompt": "x", "max_tokens": 3, "stream": True}).encode()
        s.sendall(b"POST /v1/completions HTTP/1.0\r\nContent-Length: %d\r\n\r\n" % len(bd) + bd)
        data = s.makefile("rb").read()
        assert b"Transfer-Encoding" not in data and data.endswith(b"data: [DONE]\n\n"), data[-200:]
        assert data.count(b"data: ") == 4


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--gpusim", required=True)
    ap.add_argument("-k", help="run only cases whose name contains this")
    ARGS = ap.parse_args()
    passed = failed = 0
    for fn in CASES:
        if ARGS.k and ARGS.k not in fn.__name__:
            continue
        t = time.monotonic()
        try:
            fn()
            passed += 1
            print(f"PASS {fn.__name__} ({time.monotonic() - t:.2f}s)", flush=True)
        except Exception:  # noqa: BLE001 - report and go on
            failed += 1
            print(f"FAIL {fn.__name__}", flush=True)
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
