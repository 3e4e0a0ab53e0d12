#!/usr/bin/env python3
"""fake_voro: stand-in for `voro -c FILE` (tcp listeners only) used to self-test the benchmark driver.

It reads the same INI as voro ([listener X] bind/pool, [pool Y] server = NAME HOST:PORT) and forwards
TCP with one selectors loop. FAKE_VORO_MODE=corrupt flips one byte of every chunk coming back from the
backend, so the driver's integrity check can be shown to fail; corrupt-late does so only from the 20th
connection on (past the driver's first echo check, so tcpload must catch it); exit exits at once.
Its admin address answers any request with the /stats io_model object: running = the configured
model, or epoll with FAKE_VORO_MODE=fallback (a silent io_uring fallback the driver must catch in CI).
"""

import configparser
import json
import os
import selectors
import signal
import socket
import sys


def parse(path):
    cp = configparser.ConfigParser(inline_comment_prefixes=("#", ";"), strict=False)
    cp.read(path)
    pools = {}
    for sec in cp.sections():
        if sec.startswith("pool "):
            server = cp[sec].get("server", "").split()
            host, port = server[-1].rsplit(":", 1)
            pools[sec[5:].strip()] = (host, int(port))
    routes = []
    for sec in cp.sections():
        if sec.startswith("listener ") and cp[sec].get("mode", "tcp") == "tcp":
            host, port = cp[sec]["bind"].rsplit(":", 1)
            routes.append(((host, int(port)), pools[cp[sec]["pool"]]))
    admin = None
    if cp.has_option("node", "admin_address"):
        host, port = cp["node"]["admin_address"].rsplit(":", 1)
        admin = (host, int(port))
    io_model = cp.get("server", "io_model", fallback="io_uring")
    return routes, admin, io_model


def answer_admin(ls, configured, running):
    """One blocking request/answer on the admin socket: the /stats io_model object, whatever the path."""
    try:
        c, _ = ls.accept()
    except BlockingIOError:
        return
    try:
        c.settimeout(2)
        buf = b""
        while b"\r\n\r\n" not in buf and len(buf) < 8192:
            d = c.recv(4096)
            if not d:
                break
            buf += d
        body = json.dumps({"io_model": {"configured": configured, "running": running}}).encode()
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
    except OSError:
        pass
    finally:
        c.close()


class Pipe:
    """One proxied connection: the client socket, its backend socket and data queued each way."""

    def __init__(self, client, backend):
        self.s = {client: backend, backend: client}
        self.backend = backend
        self.out = {client: bytearray(), backend: bytearray()}
        self.corrupt = False


def main():
    if len(sys.argv) != 3 or sys.argv[1] != "-c":
        print("usage: fake_voro.py -c FILE", file=sys.stderr)
        return 2
    mode = os.environ.get("FAKE_VORO_MODE", "")
    if mode == "exit":
        print("fake_voro: exiting as asked", file=sys.stderr)
        return 3
    routes, admin, io_model = parse(sys.argv[2])
    sel = selectors.DefaultSelector()
    if admin:
        als = socket.socket()
        als.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        als.bind(admin)
        als.listen(64)
        als.setblocking(False)
        sel.register(als, selectors.EVENT_READ, ("admin", None))
    running = "epoll" if mode == "fallback" else io_model
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    for addr, target in routes:
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(addr)
        ls.listen(4096)
        ls.setblocking(False)
        sel.register(ls, selectors.EVENT_READ, ("listen", target))
    pipes = {}
    accepted = 0

    def close(p):
        for s in list(p.s):
            pipes.pop(s, None)
            try:
                sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()

    def want(p, s):
        ev = selectors.EVENT_READ | (selectors.EVENT_WRITE if p.out[s] else 0)
        sel.modify(s, ev, ("pipe", p))

    while not stop:
        for key, ev in sel.select(timeout=0.2):
            kind, data = key.data
            if kind == "admin":
                answer_admin(key.fileobj, io_model, running)
                continue
            if kind == "listen":
                for _ in range(64):
                    try:
                        c, _ = key.fileobj.accept()
                    except BlockingIOError:
                        break
                    b = socket.socket()
                    b.setblocking(False)
                    try:
                        b.connect(data)
                    except BlockingIOError:
                        pass
                    c.setblocking(False)
                    p = Pipe(c, b)
                    accepted += 1
                    p.corrupt = mode == "corrupt" or (mode == "corrupt-late" and accepted >= 20)
                    pipes[c] = pipes[b] = p
                    sel.register(c, selectors.EVENT_READ, ("pipe", p))
                    sel.register(b, selectors.EVENT_READ | selectors.EVENT_WRITE, ("pipe", p))
                continue
            p, s = data, key.fileobj
            if s not in pipes:
                continue
            peer = p.s[s]
            try:
                if ev & selectors.EVENT_WRITE and p.out[s]:
                    try:
                        del p.out[s][:s.send(p.out[s])]
                    except BlockingIOError:
                        pass
                if ev & selectors.EVENT_READ:
                    try:
                        chunk = s.recv(65536)
                    except BlockingIOError:
                        want(p, s)
                        continue
                    if not chunk:
                        close(p)
                        continue
                    if p.corrupt and s is p.backend:
                        chunk = bytes([chunk[0] ^ 0x5A]) + chunk[1:]
                    p.out[peer] += chunk
                    want(p, peer)
                want(p, s)
            except OSError:
                close(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
