"""UDP proxy scenarios on all four io models: a session per client (own upstream socket),
replies from the address the client wrote to, balancing per session, idle expiry."""
import re
import signal
import socket
import time

from voro_harness import Runner, UdpBackend, Voro, free_port, wait_until


def config(port, servers, idle="300ms", algorithm="round_robin"):
    text = (f"[server]\nthreads = 1\n[node]\nadmin_address = {{admin}}\n"
            f"[listener dns]\nmode = udp\nbind = 127.0.0.1:{port}\npool = u\nidle_timeout = {idle}\n"
            f"[pool u]\nalgorithm = {algorithm}\nhealth_check = none\n")
    for i, s in enumerate(servers):
        text += f"server = u{i} {s}\n"
    return text


def client(src_ip="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src_ip, 0))
    s.settimeout(5)
    return s


def case_sessions(r, model):
    u1, u2 = UdpBackend("u1"), UdpBackend("u2")
    port = free_port(socket.SOCK_DGRAM)
    v = Voro(r.args.voro, config(port, [u1.addr, u2.addr], idle="30s"), io_model=model)
    try:
        c1, c2 = client(), client()
        names = []
        for c in (c1, c2):
            c.sendto(b"hello", ("127.0.0.1", port))
            data, src = c.recvfrom(65536)
            assert src == ("127.0.0.1", port), src  # reply comes from the address we wrote to
            names.append(data.split(b":")[0])
            assert data.endswith(b":hello")
        assert sorted(names) == [b"u1", b"u2"], names  # round robin per session
        # A session sticks to its backend and keeps one upstream socket.
        for i in range(20):
            c1.sendto(b"n%d" % i, ("127.0.0.1", port))
            data, _ = c1.recvfrom(65536)
            assert data == names[0] + b":n%d" % i, data
        assert len(u1.peers) == 1 and len(u2.peers) == 1, (u1.peers, u2.peers)
        # The reply can reach us a moment before the worker counts it: wait for the counters.
        wait_until(lambda: v.stats()["workers"][0]["udp_datagrams_out"] == 22, what="datagram counters")
        w = v.stats()["workers"][0]
        assert w["udp_sessions"] == 2 and w["udp_datagrams_in"] == 22 and w["udp_datagrams_out"] == 22, w
        c1.close()
        c2.close()
    finally:
        v.close()
        u1.close()
        u2.close()


def case_reply_source_address(r, model):
    """Bound to 127.0.0.0/8's wildcard, replies must still come from the exact address used."""
    u = UdpBackend("u")
    port = free_port(socket.SOCK_DGRAM)
    text = config(port, [u.addr]).replace(f"bind = 127.0.0.1:{port}", f"bind = 0.0.0.0:{port}")
    v = Voro(r.args.voro, text, io_model=model)
    try:
        for dst in ("127.0.0.1", "127.0.0.5"):
            c = client()
            c.sendto(b"q", (dst, port))
            data, src = c.recvfrom(65536)
            assert src == (dst, port), (dst, src)
            assert data == b"u:q"
            c.close()
    finally:
        v.close()
        u.close()


def case_idle_expiry(r, model):
    u = UdpBackend("u")
    port = free_port(socket.SOCK_DGRAM)
    v = Voro(r.args.voro, config(port, [u.addr], idle="200ms"), io_model=model)
    try:
        c = client()
        c.sendto(b"a", ("127.0.0.1", port))
        assert c.recvfrom(100)[0] == b"u:a"
        assert v.stats()["workers"][0]["udp_sessions"] == 1
        wait_until(lambda: v.stats()["workers"][0]["udp_sessions"] == 0, timeout=5, what="session expiry")
        # The same client gets a fresh session (a new upstream socket).
        c.sendto(b"b", ("127.0.0.1", port))
        assert c.recvfrom(100)[0] == b"u:b"
        assert len(u.peers) == 2, u.peers
        assert v.stats()["workers"][0]["udp_sessions_total"] == 2
        c.close()
    finally:
        v.close()
        u.close()


def case_sessions_survive_worker_replacement(r, model):
    """A reload that changes threads and io_model replaces the workers: every session keeps its
    upstream socket (the backend sees the same source port) and its backend."""
    u1, u2 = UdpBackend("u1"), UdpBackend("u2")
    port = free_port(socket.SOCK_DGRAM)
    base = config(port, [u1.addr, u2.addr], idle="30s")
    other = "epoll" if model != "epoll" else "poll"
    v = Voro(r.args.voro, base.replace("threads = 1", f"threads = 1\nio_model = {model}"))
    try:
        clients = [client() for _ in range(6)]
        first = []
        for i, c in enumerate(clients):
            c.sendto(b"a%d" % i, ("127.0.0.1", port))
            first.append(c.recvfrom(100)[0].split(b":")[0])
        peers_before = set(u1.peers) | set(u2.peers)
        assert len(peers_before) == 6
        gen = v.stats()["node"]["config_generation"]
        v.write_config(base.replace("threads = 1", f"threads = 2\nio_model = {other}"))
        v.signal(signal.SIGHUP)
        wait_until(lambda: v.stats()["node"]["config_generation"] == gen + 1, what="reload applied")
        wait_until(lambda: v.stats()["io_model"]["running"] == other and len(v.stats()["workers"]) == 2,
                   what="workers replaced")
        for i, c in enumerate(clients):
            c.sendto(b"b%d" % i, ("127.0.0.1", port))
            data, src = c.recvfrom(100)
            assert src == ("127.0.0.1", port)
            assert data == first[i] + b":b%d" % i, (data, first[i])
        assert set(u1.peers) | set(u2.peers) == peers_before, "upstream sockets changed"
        adopted = [int(a) for a, _ in re.findall(r"adopted (\d+) of (\d+) UDP sessions", v.log_text())]
        assert sum(adopted) == 6, v.log_text()
        for c in clients:
            c.close()
    finally:
        v.close()
        u1.close()
        u2.close()


def main():
    r = Runner()
    for model in r.models:
        for c in (case_sessions, case_reply_source_address, case_idle_expiry, case_sessions_survive_worker_replacement):
            r.run(f"{c.__name__[5:]}[{model}]", c, r, model)
    r.finish()


if __name__ == "__main__":
    main()
