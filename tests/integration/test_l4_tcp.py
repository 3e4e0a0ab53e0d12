"""L4 TCP proxy scenarios, each run on all four io models: large payloads with checksums,
half-close, a dead backend (retry elsewhere), connection limits, idle timeout, SIGHUP reload
under traffic without a dropped connection, and SIGTERM drain."""
import hashlib
import os
import re
import signal
import socket
import threading
import time

from voro_harness import (dead_port, Backend, Runner, Voro, connect, free_port, is_closed_by_peer, recv_exactly,
                          recv_until_eof, wait_until)


def config(port, servers, admin="{admin}", extra_pool="", extra="", algorithm="round_robin", threads=2,
           listener_extra=""):
    lines = [f"[server]\nthreads = {threads}\n", f"[node]\nadmin_address = {admin}\n", extra,
             f"[listener main]\nmode = tcp\nbind = 127.0.0.1:{port}\npool = app\n{listener_extra}\n",
             f"[pool app]\nalgorithm = {algorithm}\nhealth_interval = 200ms\nhealth_timeout = 200ms\n{extra_pool}\n"]
    for i, s in enumerate(servers):
        lines.append(f"server = s{i} {s}\n")
    return "".join(lines)


def case_large_payload(r, model):
    b1, b2 = Backend("b1"), Backend("b2")
    port = free_port()
    v = Voro(r.args.voro, config(port, [b1.addr, b2.addr]), io_model=model)
    try:
        st = v.stats()
        assert st["io_model"]["running"] == model, st["io_model"]
        payload = os.urandom(8 << 20)
        results = []

        def one():
            s = connect(port)
            sender = threading.Thread(target=s.sendall, args=(payload,))
            sender.start()
            got = recv_exactly(s, len(payload))
            sender.join()
            s.close()
            results.append(hashlib.sha256(got).digest() == hashlib.sha256(payload).digest())

        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert results == [True] * 4, results
        # Both backends were used (round robin) and byte counts are exact.
        assert b1.accepted >= 1 and b2.accepted >= 1, (b1.accepted, b2.accepted)
        st = wait_until(lambda: (lambda s: s if s["listeners"][0]["bytes_in"] == 4 * len(payload) else None)(v.stats()),
                        what="byte counters")
        lst = st["listeners"][0]
        assert lst["bytes_out"] == 4 * len(payload), lst
        srv = st["pools"][0]["servers"]
        assert sum(s["bytes_out"] for s in srv) == 4 * len(payload), srv
        assert sum(s["connections"] for s in srv) == 4, srv
    finally:
        v.close()
        b1.close()
        b2.close()


def case_half_close(r, model):
    b = Backend("hc", mode="halfclose")
    port = free_port()
    v = Voro(r.args.voro, config(port, [b.addr]), io_model=model)
    try:
        s = connect(port)
        data = os.urandom(300000)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)  # the backend only answers after it sees our FIN
        reply = recv_until_eof(s)
        assert reply == hashlib.sha256(data).hexdigest().encode(), reply[:80]
        s.close()
        wait_until(lambda: v.stats()["workers"] and sum(w["active"] for w in v.stats()["workers"]) == 0,
                   what="connection closed after both FINs")
    finally:
        v.close()
        b.close()


def case_backend_down_retry(r, model):
    good = Backend("good", mode="ident")
    dead = dead_port()  # nothing listens here
    port = free_port()
    cfg = config(port, [f"127.0.0.1:{dead}", good.addr], extra_pool="retries = 2\nhealth_check = none\n", threads=1)
    v = Voro(r.args.voro, cfg, io_model=model)
    try:
        for _ in range(6):
            s = connect(port)
            assert s.recv(64) == b"good\n"
            s.close()
        st = v.stats()
        dead = st["pools"][0]["servers"][0]
        assert dead["connect_failures"] >= 1, dead
        assert sum(w["connect_retries"] for w in st["workers"]) >= 1, st["workers"]
    finally:
        v.close()
        good.close()


def case_health_check_marks_down(r, model):
    good = Backend("good", mode="ident")
    dead = dead_port()
    port = free_port()
    cfg = config(port, [f"127.0.0.1:{dead}", good.addr],
                 extra_pool="health_check = tcp\nhealth_rise = 1\nhealth_fall = 1\n", threads=1)
    v = Voro(r.args.voro, cfg, io_model=model)
    try:
        wait_until(lambda: v.stats()["pools"][0]["servers"][0]["health"] == "down", what="dead server marked down")
        before = v.stats()["pools"][0]["servers"][0]["connect_failures"]
        for _ in range(5):
            s = connect(port)
            assert s.recv(64) == b"good\n"
            s.close()
        # A server marked down is not even tried.
        assert v.stats()["pools"][0]["servers"][0]["connect_failures"] == before
    finally:
        v.close()
        good.close()


def case_no_server(r, model):
    port = free_port()
    cfg = config(port, [f"127.0.0.1:{dead_port()}"], extra_pool="retries = 1\nhealth_check = none\n", threads=1)
    v = Voro(r.args.voro, cfg, io_model=model)
    try:
        s = connect(port)
        assert is_closed_by_peer(s), "client connection must be closed when no server answers"
        s.close()
        wait_until(lambda: sum(w["no_server"] for w in v.stats()["workers"]) >= 1, what="no_server counted")
    finally:
        v.close()


def case_connection_limits(r, model):
    b = Backend("b")
    port = free_port()
    cfg = config(port, [b.addr], extra="[limit]\nmax_connections = 3\nmax_connections_per_ip = 2\n", threads=1)
    v = Voro(r.args.voro, cfg, io_model=model)
    try:
        held = [connect(port) for _ in range(2)]
        for s in held:
            s.sendall(b"ping")
            assert recv_exactly(s, 4) == b"ping"
        third = connect(port)
        assert is_closed_by_peer(third), "third connection from one IP must be closed"
        third.close()
        st = v.stats()
        assert sum(w["rejected_per_ip"] for w in st["workers"]) == 1, st["workers"]
        assert st["limits"]["connections"] == 2, st["limits"]
        # A different source address (127.0.0.2) is under its own per-IP cap but hits max_connections = 3.
        other = socket.socket()
        other.settimeout(5)
        other.bind(("127.0.0.2", 0))
        other.connect(("127.0.0.1", port))
        other.sendall(b"pong")
        assert recv_exactly(other, 4) == b"pong"
        fourth = socket.socket()
        fourth.settimeout(5)
        fourth.bind(("127.0.0.3", 0))
        fourth.connect(("127.0.0.1", port))
        assert is_closed_by_peer(fourth), "max_connections must close the fourth connection"
        fourth.close()
        assert sum(w["rejected_max_connections"] for w in v.stats()["workers"]) == 1
        for s in held + [other]:
            s.close()
        wait_until(lambda: v.stats()["limits"]["connections"] == 0, what="limits released")
        s = connect(port)
        s.sendall(b"again")
        assert recv_exactly(s, 5) == b"again"
        s.close()
    finally:
        v.close()
        b.close()


def case_rate_limit(r, model):
    b = Backend("b", mode="ident")
    port = free_port()
    v = Voro(r.args.voro, config(port, [b.addr], extra="[limit]\nglobal_qps = 4\n", threads=1), io_model=model)
    try:
        t0 = time.monotonic()
        admitted = refused = 0
        for _ in range(20):
            s = connect(port)
            try:
                if s.recv(2).startswith(b"b"):
                    admitted += 1
                else:
                    refused += 1
            except ConnectionResetError:
                refused += 1
            s.close()
        elapsed = time.monotonic() - t0
        # A burst of one second's worth (4) plus what refilled meanwhile, never more.
        assert 4 <= admitted <= 4 + int(4 * elapsed) + 1, (admitted, elapsed)
        assert refused == 20 - admitted
        wait_until(lambda: sum(w["rejected_rate"] for w in v.stats()["workers"]) == refused, what="rejections counted")
    finally:
        v.close()
        b.close()


def case_fd_limit_caps_connections(r, model):
    """With a low fd limit the node caps connections at what the limit can hold (like HAProxy's
    maxconn from ulimit): excess clients are closed cleanly and counted, the admin API stays
    reachable, proxied connections keep working, and capacity comes back when they close."""
    import resource

    def low_fd_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (400, 400))

    b = Backend("b")
    port = free_port()
    v = Voro(r.args.voro, config(port, [b.addr], threads=1), io_model=model, preexec_fn=low_fd_limit)
    clients = []
    try:
        m = re.search(r"about (\d+) L4 connections", v.log_text())
        assert m, v.log_text()
        cap = int(m.group(1))
        assert 10 < cap < 200, cap
        for _ in range(cap):
            c = connect(port)
            c.sendall(b"p")
            assert recv_exactly(c, 1) == b"p"
            clients.append(c)
        extra = connect(port)
        assert is_closed_by_peer(extra), "a connection beyond the fd cap must be closed"
        extra.close()
        st = v.stats()  # the admin API still has descriptors
        assert sum(w["rejected_fds"] for w in st["workers"]) == 1, st["workers"]
        assert st["limits"]["connections"] == cap
        clients[0].sendall(b"z")
        assert recv_exactly(clients[0], 1) == b"z"
        for c in clients:
            c.close()
        clients = []
        wait_until(lambda: v.stats()["limits"]["connections"] == 0, what="connections released")
        c = connect(port)
        c.sendall(b"q")
        assert recv_exactly(c, 1) == b"q"
        c.close()
    finally:
        for c in clients:
            c.close()
        v.close()
        b.close()


def case_select_beyond_fd_setsize(r, model):
    """select(2) cannot watch fds >= FD_SETSIZE (1024): the node sizes its budget to that, so
    connections beyond it are refused cleanly instead of corrupting fd_sets."""
    b = Backend("b")
    port = free_port()
    v = Voro(r.args.voro, config(port, [b.addr], threads=1), io_model=model)
    clients = []
    try:
        assert "fd budget: limit 1024" in v.log_text(), v.log_text()
        served = refused = 0
        for _ in range(600):  # 1,200 sockets in the proxy if all were admitted
            c = connect(port)
            clients.append(c)
        for c in clients:
            try:
                c.sendall(b"s")
                c.settimeout(5)
                d = c.recv(1)
                served += d == b"s"
                refused += d == b""
            except (ConnectionResetError, BrokenPipeError):
                refused += 1
        assert served + refused == 600 and served > 100 and refused > 0, (served, refused)
        st = v.stats()
        assert sum(w["rejected_fds"] for w in st["workers"]) == refused
    finally:
        for c in clients:
            c.close()
        v.close()
        b.close()


def case_idle_timeout(r, model):
    b = Backend("b")
    port = free_port()
    cfg = config(port, [b.addr], listener_extra="idle_timeout = 300ms\n", threads=1)
    v = Voro(r.args.voro, cfg, io_model=model)
    try:
        busy = connect(port)
        idle = connect(port)
        idle.sendall(b"x")
        assert recv_exactly(idle, 1) == b"x"
        # Keep one connection busy past the timeout: only the idle one is reaped.
        deadline = time.monotonic() + 0.9
        while time.monotonic() < deadline:
            busy.sendall(b"k")
            assert recv_exactly(busy, 1) == b"k"
            time.sleep(0.05)
        assert is_closed_by_peer(idle, timeout=5), "idle connection must be closed"
        busy.sendall(b"still")
        assert recv_exactly(busy, 5) == b"still"
        assert sum(w["idle_timeouts"] for w in v.stats()["workers"]) == 1
        busy.close()
        idle.close()
    finally:
        v.close()
        b.close()


def case_reload_under_traffic(r, model):
    b1, b2 = Backend("b1", mode="ident"), Backend("b2", mode="ident")
    port = free_port()
    v = Voro(r.args.voro, config(port, [b1.addr]), io_model=model)
    stop = threading.Event()
    errors = []
    done = [0]

    def traffic():
        s = connect(port)
        s.recv(3)
        n = 0
        while not stop.is_set() and n < 100000:
            msg = b"m%06d" % n
            try:
                s.sendall(msg)
                if recv_exactly(s, len(msg)) != msg:
                    errors.append("mismatch")
                    break
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
                break
            n += 1
            done[0] = n
        s.close()

    try:
        long_lived = [threading.Thread(target=traffic) for _ in range(3)]
        for t in long_lived:
            t.start()
        wait_until(lambda: done[0] > 50, what="traffic flowing")
        gen = v.stats()["node"]["config_generation"]
        # New config: second backend only, and a changed thread count (workers replaced).
        v.write_config(config(port, [b2.addr], threads=3))
        v.signal(signal.SIGHUP)
        wait_until(lambda: v.stats()["node"]["config_generation"] == gen + 1, what="reload applied")
        # New connections go to the new backend while the old ones keep flowing.
        for _ in range(5):
            s = connect(port)
            assert s.recv(3) == b"b2\n"
            s.close()
        mark = done[0]
        wait_until(lambda: done[0] > mark + 50, what="old connections still flowing after reload")
        assert v.stats()["threads"] == 3
        # A broken config is refused and the running one stays.
        v.write_config("[server]\nthreads = 2\nbogus_key = 1\n")
        v.signal(signal.SIGHUP)
        wait_until(lambda: "bogus_key" in v.log_text(), what="the refused reload logged")
        assert v.stats()["node"]["config_generation"] == gen + 1
        stop.set()
        for t in long_lived:
            t.join(30)
        assert not errors, errors
    finally:
        stop.set()
        v.close()
        b1.close()
        b2.close()


def case_reload_changes_io_model(r, model):
    """io_model comes from the config here (no --io-model): changing it replaces the workers one
    at a time while an established connection keeps flowing through its old worker."""
    b = Backend("b")
    port = free_port()
    other = "poll" if model != "poll" else "epoll"
    base = config(port, [b.addr], threads=1)
    v = Voro(r.args.voro, base.replace("threads = 1", f"threads = 1\nio_model = {model}"))
    try:
        s = connect(port)
        s.sendall(b"one")
        assert recv_exactly(s, 3) == b"one"
        assert v.stats()["io_model"]["running"] == model
        v.write_config(base.replace("threads = 1", f"threads = 1\nio_model = {other}"))
        v.signal(signal.SIGHUP)
        wait_until(lambda: v.stats()["io_model"]["running"] == other, what="new io model running")
        st = v.stats()
        states = sorted((w["io_model"], w["state"]) for w in st["workers"])
        assert (model, "draining") in states and (other, "running") in states, states
        s.sendall(b"two")  # served by the draining old worker
        assert recv_exactly(s, 3) == b"two"
        c = connect(port)  # served by the new worker
        c.sendall(b"new")
        assert recv_exactly(c, 3) == b"new"
        c.close()
        s.close()
        wait_until(lambda: len(v.stats()["workers"]) == 1, what="old worker finished draining")
        assert v.stats()["workers"][0]["io_model"] == other
    finally:
        v.close()
        b.close()


def case_sigterm_drain(r, model):
    b = Backend("b")
    port = free_port()
    v = Voro(r.args.voro, config(port, [b.addr], extra="[timeouts]\ndrain = 10s\n"), io_model=model)
    try:
        s = connect(port)
        s.sendall(b"before")
        assert recv_exactly(s, 6) == b"before"
        v.signal(signal.SIGTERM)
        # Stops accepting: new connections are refused once listeners close...
        def refused():
            try:
                c = connect(port, timeout=1)
            except OSError:
                return True
            ok = is_closed_by_peer(c, timeout=1)
            c.close()
            return ok
        wait_until(refused, what="new connections refused while draining")
        # ...while the in-flight connection keeps working.
        s.sendall(b"during")
        assert recv_exactly(s, 6) == b"during"
        assert v.proc.poll() is None, "voro must wait for the connection"
        s.close()
        assert v.wait(15) == 0, v.log_text()
    finally:
        v.close()
        b.close()


def case_drain_grace_expires(r, model):
    b = Backend("b")
    port = free_port()
    v = Voro(r.args.voro, config(port, [b.addr], extra="[timeouts]\ndrain = 300ms\n"), io_model=model)
    try:
        s = connect(port)
        s.sendall(b"x")
        assert recv_exactly(s, 1) == b"x"
        v.signal(signal.SIGTERM)
        assert v.wait(15) == 0, v.log_text()
        assert is_closed_by_peer(s), "connection is cut when the grace period ends"
        s.close()
    finally:
        v.close()
        b.close()


def main():
    r = Runner()
    cases = [case_large_payload, case_half_close, case_backend_down_retry, case_health_check_marks_down,
             case_no_server, case_connection_limits, case_rate_limit, case_fd_limit_caps_connections, case_select_beyond_fd_setsize, case_idle_timeout, case_reload_under_traffic,
             case_reload_changes_io_model, case_sigterm_drain, case_drain_grace_expires]
    for model in r.models:
        for c in cases:
            if c is case_select_beyond_fd_setsize and model != "select":
                continue  # the FD_SETSIZE limit only exists for select
            r.run(f"{c.__name__[5:]}[{model}]", c, r, model)
    r.finish()


if __name__ == "__main__":
    main()
