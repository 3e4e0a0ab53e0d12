"""io_uring at scale: as many concurrent TCP connections as one worker's descriptor budget holds
(10,000 where the limit allows; each proxied connection holds two descriptors, so under a
20,000-descriptor limit the budget stops near 9,850) on one io_uring worker, most of them idle,
while bursts of clients connect and reset or close abruptly, then a mass reset of half the idle
ones. Every connection must be freed (/stats back to 0 active) and voro must hold exactly the
descriptors it held before the traffic (no leak), and still proxy afterwards.

The HTTP case reaches the full 10,000 on one io_uring worker: an idle HTTP client holds one
descriptor (its server socket exists only while a request is in flight or pooled). Its bursts
cancel at every stage: before the first byte, in the middle of a request head, and after a whole
request went upstream (the client leaves while the server answers)."""
import os
import re
import resource
import selectors
import socket
import struct
import time

from http_backend import HttpBackend
from test_l4_integrity import EchoBackend
from voro_harness import Runner, Voro, free_port, wait_until

TARGET = 10000
BURSTS = 5
BURST = 1000
PHASE_DEADLINE_S = 60.0


def fd_count(pid, admin_port):
    """Descriptors open in `pid`, not counting connections to its admin API (the /stats request
    that just returned may still be closing)."""
    admin = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if int(parts[1].rsplit(":", 1)[1], 16) == admin_port and parts[3] != "0A":
                        admin.add(f"socket:[{parts[9]}]")
        except FileNotFoundError:
            pass
    n = 0
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{name}") not in admin
        except OSError:
            pass
    return n


def active(v):
    return sum(w["active"] for w in v.stats()["workers"])


def open_connections(port, n, deadline_s=PHASE_DEADLINE_S, ping=True):
    """Opens n connections (at most 512 connecting at once); with ping, each sends a byte and
    waits for its echo, so it is known to be proxied end to end. Returns the sockets."""
    sel = selectors.DefaultSelector()
    done, pending, started = [], 0, 0
    deadline = time.monotonic() + deadline_s
    try:
        while len(done) < n:
            while started < n and pending < 512:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", port))
                sel.register(s, selectors.EVENT_WRITE, "connecting")
                started += 1
                pending += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(done)} of {n} connections established in {deadline_s}s")
            for key, _ in sel.select(timeout=1.0):
                s = key.fileobj
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise AssertionError(f"connect failed after {len(done)} connections: {os.strerror(err)}")
                if key.data == "connecting" and ping:
                    s.send(b"p")
                    sel.modify(s, selectors.EVENT_READ, "ping")
                    continue
                if key.data == "ping" and s.recv(1) != b"p":
                    raise AssertionError(f"no echo through voro after {len(done)} connections")
                sel.unregister(s)
                pending -= 1
                done.append(s)
    except BaseException:
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        for s in done:
            s.close()
        raise
    finally:
        sel.close()
    return done


def reset(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def burst(port, n, sends):
    """n clients connect and leave at once: client i sends sends[i % len(sends)] (b"" = nothing)
    once connected, then resets without reading anything."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_WRITE)
    left = set(socks)
    deadline = time.monotonic() + PHASE_DEADLINE_S
    i = 0
    while left and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            sel.unregister(s)
            left.discard(s)
            data = sends[i % len(sends)]
            if data:
                try:
                    s.send(data)
                except OSError:
                    pass
            i += 1
            reset(s)
    sel.close()
    for s in left:
        s.close()
    assert not left, f"{len(left)} burst connections never connected"


def case_uring_scale_cancels(r, model):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    backend = EchoBackend(r.args.build_dir)
    port = free_port()
    cfg = (f"[server]\nthreads = 1\nsplice = off\n[node]\nadmin_address = {{admin}}\n"
           f"[listener main]\nmode = tcp\nbind = 127.0.0.1:{port}\npool = app\n"
           f"[pool app]\nhealth_check = none\nserver = e 127.0.0.1:{backend.port}\n")
    v = None
    idle = []
    try:
        v = Voro(r.args.voro, cfg, io_model=model)
        assert v.stats()["io_model"]["running"] == model
        m = wait_until(lambda: re.search(r"about (\d+) L4 connections", v.log_text(1 << 16)),
                       what="fd budget log line")
        budget = int(m.group(1))
        # This process holds the client ends: its own limit bounds the count too.
        total = min(TARGET, budget - 16, hard - 200)
        n_idle = total - BURST
        assert n_idle >= 1000, f"descriptor budget too small for this test: {budget} (limit {hard})"
        print(f"  {model}: {total} concurrent connections (budget {budget}, limit {hard}): "
              f"{n_idle} idle + bursts of {BURST}", flush=True)
        base_fds = fd_count(v.proc.pid, v.admin_port)
        idle = open_connections(port, n_idle)
        assert active(v) == n_idle, (active(v), n_idle)
        assert fd_count(v.proc.pid, v.admin_port) >= base_fds + 2 * n_idle, (fd_count(v.proc.pid, v.admin_port), base_fds, n_idle)
        data = os.urandom(64 << 10)
        for _ in range(BURSTS):
            # Half reset right after connecting (voro may still be connecting upstream), half
            # after sending data they never read back.
            burst(port, BURST, [b"", data])
        # Mass cancel: half the idle connections reset at once, the other half close.
        for i, s in enumerate(idle):
            if i % 2:
                reset(s)
            else:
                s.close()
        idle = []
        wait_until(lambda: active(v) == 0, timeout=30, what="every connection freed (active 0)")
        wait_until(lambda: fd_count(v.proc.pid, v.admin_port) == base_fds, timeout=10,
                   what=f"voro back to its {base_fds} descriptors (no leak)")
        st = v.stats()
        accepted = st["listeners"][0]["accepted"]
        assert n_idle + BURSTS * BURST // 2 <= accepted <= n_idle + BURSTS * BURST, (accepted, n_idle)
        # Still proxies.
        s = open_connections(port, 1)[0]
        s.close()
    finally:
        for s in idle:
            s.close()
        if v:
            v.close()
        backend.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def http_get(port):
    """One request on a new connection: the status line."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: scale\r\nConnection: close\r\n\r\n")
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n", 1)[0]


def case_uring_scale_http(r, model):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    backend = HttpBackend("scale")
    port = free_port()
    cfg = (f"[server]\nthreads = 1\n[node]\nadmin_address = {{admin}}\n"
           f"[listener main]\nmode = http\nbind = 127.0.0.1:{port}\npool = app\n"
           f"[pool app]\nhealth_check = none\nserver = b 127.0.0.1:{backend.port}\n")
    v = None
    idle = []
    try:
        v = Voro(r.args.voro, cfg, io_model=model)
        assert v.stats()["io_model"]["running"] == model
        budget = v.stats()["limits"]["descriptor_budget"]
        total = min(TARGET, budget - BURST - 64, hard - BURST - 200)
        assert total >= TARGET or hard < 2 * TARGET, f"descriptor budget {budget} (limit {hard}) below {TARGET}"
        print(f"  {model}: {total} idle HTTP connections (descriptor budget {budget}, limit {hard}) "
              f"+ bursts of {BURST}", flush=True)
        assert http_get(port).startswith(b"HTTP/1.1 200"), "voro does not proxy before the test"
        base_fds = fd_count(v.proc.pid, v.admin_port)
        idle = open_connections(port, total, ping=False)
        wait_until(lambda: active(v) == total, timeout=30, what=f"{total} idle HTTP connections accepted")
        st = v.stats()
        # One descriptor per idle client, none upstream (the pooled server connection of the
        # first request may still be open: one more).
        assert total <= st["limits"]["descriptors"] <= total + 2, (st["limits"], total)
        for _ in range(BURSTS):
            # Cancelled before the first byte, in the middle of a head, and with the request
            # upstream (the server answers a client that is gone).
            burst(port, BURST, [b"", b"GET /echo HTTP/1.1\r\nHost: scale\r\nX-Part",
                                b"GET /echo HTTP/1.1\r\nHost: scale\r\n\r\n"])
        # Served while 10,000 clients sit idle.
        assert http_get(port).startswith(b"HTTP/1.1 200"), "no answer with the idle clients connected"
        for i, s in enumerate(idle):
            if i % 2:
                reset(s)
            else:
                s.close()
        idle = []
        wait_until(lambda: active(v) == 0, timeout=30, what="every connection freed (active 0)")
        wait_until(lambda: fd_count(v.proc.pid, v.admin_port) <= base_fds + 1, timeout=10,
                   what=f"voro back to its {base_fds} descriptors (no leak)")
        wait_until(lambda: v.stats()["limits"]["descriptors"] <= 1, timeout=10,
                   what="the descriptor budget given back (at most one pooled server connection)")
        st = v.stats()
        assert sum(w["request_buffers_in_use"] for w in st["workers"]) == 0, st["workers"]
        assert http_get(port).startswith(b"HTTP/1.1 200"), "voro no longer proxies"
    finally:
        for s in idle:
            s.close()
        if v:
            v.close()
        backend.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def main():
    r = Runner()
    # The test is about the io_uring backend; `--io-model` may still select others.
    models = r.args.io_model or ["io_uring"]
    for model in models:
        r.run(f"uring_scale_cancels[{model}]", case_uring_scale_cancels, r, model)
        r.run(f"uring_scale_http[{model}]", case_uring_scale_http, r, model)
    r.finish()


if __name__ == "__main__":
    main()
