"""HTTP reload and drain under traffic: keep-alive clients, an SSE stream in mid-flight and pooled
upstream connections live across SIGHUPs that change `threads` (1 -> 2 -> 1, so the workers are
replaced and the listening sockets handed over), while a client opens new connections as fast
as it can: no reset, no failed request. SIGTERM lets an in-flight stream finish with all its
tokens within the grace period, and voro exits 0. Every case runs on every io model."""
import http.client
import json
import signal
import socket
import threading
import time

from http_backend import HttpBackend
from voro_harness import Runner, Voro, connect, free_port, wait_until


def config(port, servers, threads, drain="10s"):
    text = (f"[server]\nthreads = {threads}\n[node]\nadmin_address = {{admin}}\n"
            f"[timeouts]\ndrain = {drain}\n"
            f"[listener web]\nmode = http\nbind = 127.0.0.1:{port}\npool = web\n"
            "[pool web]\nretries = 0\nlearn_models = false\nhealth_check = none\nupstream_max_idle = 16\n")
    for i, s in enumerate(servers):
        text += f"server = s{i} {s}\n"
    return text


def read_head(f):
    line = f.readline()
    assert line.startswith(b"HTTP/1.1 "), line
    headers = {}
    while True:
        h = f.readline()
        if h in (b"\r\n", b""):
            break
        k, v = h.decode().split(":", 1)
        headers[k.strip().lower()] = v.strip()
    return int(line.split()[1]), headers


def read_chunk(f):
    size = int(f.readline().split(b";")[0], 16)
    data = f.read(size + 2)
    assert data.endswith(b"\r\n"), data
    return data[:-2]


class SseStream:
    """One SSE stream through voro; the backend sends event i+1 only after event i arrived."""

    def __init__(self, port, backend, key, n):
        self.backend, self.key, self.n = backend, key, n
        self.s = connect(port)
        self.s.sendall(b"GET /sse?key=%s&n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (key.encode(), n))
        self.f = self.s.makefile("rb")
        status, headers = read_head(self.f)
        assert status == 200 and headers.get("content-type") == "text/event-stream", (status, headers)
        self.got = []

    def next_event(self):
        i = len(self.got)
        ev = read_chunk(self.f)
        assert ev == f"data: token-{i}\n\n".encode(), (i, ev)
        self.got.append(ev)
        if i + 1 < self.n:
            self.backend.sse_acks[self.key][i].set()

    def finish(self):
        while len(self.got) < self.n:
            self.next_event()
        assert read_chunk(self.f) == b"", "the stream ends with the last chunk"

    def close(self):
        self.s.close()


class KeepAliveClient(threading.Thread):
    """GETs /echo on one connection in a loop (http.client reconnects by itself after a
    Connection: close). Any exception is a failure: a reset, a timeout, a wrong answer, and
    also a connection closed before the answer to a request sent on it (http.client's
    RemoteDisconnected), which a client that does not retry sees as a failed request."""

    def __init__(self, port, idx, stop, deadline):
        super().__init__(daemon=True)
        self.port, self.idx, self.stop, self.deadline = port, idx, stop, deadline
        self.ok = 0
        self.reconnects = 0
        self.errors = []

    def run(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            while not self.stop.is_set() and time.monotonic() < self.deadline and self.ok < 200000:
                path = f"/echo?c={self.idx}&i={self.ok}"
                try:
                    c.request("GET", path)
                    resp = c.getresponse()
                    body = resp.read()
                    if resp.status != 200 or json.loads(body)["path"] != path:
                        raise AssertionError(f"bad answer {resp.status} {body[:100]!r}")
                except Exception as e:  # noqa: BLE001 - resets, early closes, timeouts, bad answers
                    self.errors.append(f"client {self.idx} request {self.ok}: {e!r}")
                    return
                if (resp.getheader("Connection") or "").lower() == "close":
                    self.reconnects += 1
                self.ok += 1
        finally:
            c.close()


class Connector(threading.Thread):
    """Opens new connections as fast as it can, one request each (Connection: close), until
    stopped, bounded in count and time. Any reset, refusal or wrong answer is a failure."""

    def __init__(self, port, stop, deadline, limit=20000):
        super().__init__(daemon=True)
        self.port, self.stop, self.deadline, self.limit = port, stop, deadline, limit
        self.ok = 0
        self.errors = []

    def run(self):
        while not self.stop.is_set() and time.monotonic() < self.deadline and self.ok < self.limit:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
                    s.sendall(b"GET /echo?new=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % self.ok)
                    data = b""
                    while True:
                        d = s.recv(65536)
                        if not d:
                            break
                        data += d
                head, _, body = data.partition(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200") or json.loads(body)["path"] != f"/echo?new={self.ok}":
                    raise AssertionError(f"bad answer {data[:200]!r}")
            except Exception as e:  # noqa: BLE001 - resets, refusals, timeouts, bad answers
                self.errors.append(f"connection {self.ok}: {e!r}")
                return
            self.ok += 1


def case_sighup_under_traffic(r, model):
    backends = [HttpBackend("b0"), HttpBackend("b1")]
    port = free_port()
    addrs = [b.addr for b in backends]
    v = Voro(r.args.voro, config(port, addrs, threads=1), io_model=model)
    stop = threading.Event()
    deadline = time.monotonic() + 30
    clients = [KeepAliveClient(port, i, stop, deadline) for i in range(3)]
    conn = Connector(port, stop, deadline)
    stream = None
    try:
        stream = SseStream(port, backends[0], "reload", 8)
        stream.next_event()
        for t in clients + [conn]:
            t.start()
        wait_until(lambda: all(c.ok > 20 for c in clients) and conn.ok > 20 or any(c.errors for c in clients) or conn.errors,
                   what="traffic flowing")
        gen = v.stats()["node"]["config_generation"]
        for step, threads in enumerate((2, 1)):
            marks = ([c.ok for c in clients], conn.ok)
            v.write_config(config(port, addrs, threads=threads))
            v.signal(signal.SIGHUP)
            wait_until(lambda: v.stats()["node"]["config_generation"] == gen + step + 1, what=f"reload {step + 1} applied")
            # The stream started on an old worker keeps flowing through it.
            stream.next_event()
            stream.next_event()
            # Traffic on both kinds of connection goes on while the old workers drain...
            wait_until(lambda: all(c.ok > m + 20 for c, m in zip(clients, marks[0])) and conn.ok > marks[1] + 20
                       or any(c.errors for c in clients) or conn.errors, what=f"traffic after reload {step + 1}")
            assert v.stats()["threads"] == threads
        stream.finish()
        # ...and once the stream ended, the old workers finish and only the last cohort is left.
        wait_until(lambda: len(v.stats()["workers"]) == 1, timeout=15, what="old workers drained")
        marks = ([c.ok for c in clients], conn.ok)
        wait_until(lambda: all(c.ok > m + 20 for c, m in zip(clients, marks[0])) and conn.ok > marks[1] + 20
                   or any(c.errors for c in clients) or conn.errors, what="traffic after the drain")
        stop.set()
        for t in clients + [conn]:
            t.join(15)
        errors = [e for c in clients for e in c.errors] + conn.errors
        assert not errors, errors
        assert conn.ok > 100, conn.ok
        # Keep-alive clients were told to reconnect by the draining workers (Connection: close),
        # at least once per client and worker change.
        assert all(c.reconnects >= 2 for c in clients), [c.reconnects for c in clients]
        # Pooled upstream connections were reused (before and after the reloads): far fewer
        # connections reached the backends than requests.
        requests = sum(len(b.requests) for b in backends)
        connections = sum(b.connections for b in backends)
        assert requests > 300 and connections < requests / 3, (requests, connections)
        st = v.stats()
        assert st["workers"][0]["state"] == "running", st["workers"]
        print(f"  {model}: {sum(c.ok for c in clients)} keep-alive requests,"
              f" {conn.ok} new connections, {connections} upstream connections for {requests} requests", flush=True)
    finally:
        stop.set()
        for t in clients + [conn]:
            if t.is_alive():
                t.join(15)
        if stream:
            stream.close()
        v.close()
        for b in backends:
            b.close()


def case_sigterm_lets_stream_finish(r, model):
    b = HttpBackend("b0")
    port = free_port()
    v = Voro(r.args.voro, config(port, [b.addr], threads=1, drain="10s"), io_model=model)
    stream = None
    try:
        n = 6
        stream = SseStream(port, b, "term", n)
        stream.next_event()
        idle = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        idle.request("GET", "/echo?idle")
        assert idle.getresponse().read()
        t0 = time.monotonic()
        v.signal(signal.SIGTERM)

        def refused():
            try:
                c = connect(port, timeout=1)
            except OSError:
                return True
            c.close()
            return False
        wait_until(refused, timeout=10, what="listener closed after SIGTERM")
        # The idle keep-alive connection is closed cleanly (FIN, not reset).
        idle.sock.settimeout(5)
        assert idle.sock.recv(1) == b"", "idle keep-alive connection closed on drain"
        idle.close()
        # The stream goes on: every token arrives, and voro waits for it.
        while len(stream.got) < n - 1:
            stream.next_event()
            assert v.proc.poll() is None, "voro exited with a stream in flight"
        stream.finish()
        rc = v.wait(15)
        elapsed = time.monotonic() - t0
        assert rc == 0, (rc, v.log_text())
        assert elapsed < 10, f"voro took {elapsed:.1f}s: it should exit once the stream ended, not at the grace period"
    finally:
        if stream:
            stream.close()
        v.close()
        b.close()


def main():
    r = Runner()
    for model in r.models:
        for c in (case_sighup_under_traffic, case_sigterm_lets_stream_finish):
            r.run(f"{c.__name__[5:]}[{model}]", c, r, model)
    r.finish()


if __name__ == "__main__":
    main()
