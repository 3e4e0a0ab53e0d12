#!/usr/bin/env python3
"""Load generator for the scale tests and the SSE benchmark, run as its own process (the descriptor
hard limit is per process): idle keep-alive clients, active request loops, concurrent SSE streams and
slowloris clients, each a non-blocking selectors loop. Every mode is bounded in time and prints one JSON
object per report on stdout. Standard library only; loopback only.

  scale_load.py idle --port P --count N         one request per connection, then hold them open; reads
                                                commands on stdin: check | probe K | quit
  scale_load.py active --port P --conns C --seconds S
  scale_load.py sse --port P --streams N --tokens T --timeout S
  scale_load.py slowloris --port P --count N --interval S --timeout S [--duration S]
"""
import argparse
import json
import os
import resource
import selectors
import socket
import sys
import time

MAX_RESPONSE = 1 << 20


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def count(d, key):
    d[key] = d.get(key, 0) + 1


class Resp:
    """Incremental parser of one HTTP/1.1 response with Content-Length or chunked framing."""

    def __init__(self):
        self.buf = b""
        self.status = None
        self.body = b""
        self.need = None     # Content-Length body bytes left, or None when chunked
        self.chunked = False
        self.done = False
        self.head = b""

    def feed(self, data):
        """Returns True once the whole response is in; raises ValueError on a framing error."""
        self.buf += data
        if len(self.buf) + len(self.body) > MAX_RESPONSE:
            raise ValueError("response too large")
        if self.status is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return False
            self.head, self.buf = self.buf[:end], self.buf[end + 4:]
            lines = self.head.split(b"\r\n")
            parts = lines[0].split(b" ", 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
                raise ValueError("bad status line %r" % lines[0][:60])
            self.status = int(parts[1])
            if 100 <= self.status < 200:  # interim: the real response follows
                self.status = None
                return self.feed(b"")
            self.need = 0
            for ln in lines[1:]:
                k, _, v = ln.partition(b":")
                k = k.strip().lower()
                if k == b"content-length":
                    self.need = int(v.strip())
                elif k == b"transfer-encoding" and b"chunked" in v.lower():
                    self.chunked = True
                    self.need = None
        if not self.chunked:
            take = self.buf[:self.need]
            self.body += take
            self.buf = self.buf[len(take):]
            self.need -= len(take)
            self.done = self.need == 0
            return self.done
        while True:
            nl = self.buf.find(b"\r\n")
            if nl < 0:
                return False
            size = int(self.buf[:nl].split(b";")[0].strip() or b"x", 16)
            if size == 0:
                if self.buf[nl + 2:nl + 4] == b"\r\n":
                    self.buf = self.buf[nl + 4:]
                    self.done = True
                    return True
                return False  # trailers are not used by the servers under test
            if len(self.buf) < nl + 2 + size + 2:
                return False
            if self.buf[nl + 2 + size:nl + 4 + size] != b"\r\n":
                raise ValueError("bad chunk terminator")
            self.body += self.buf[nl + 2:nl + 2 + size]
            self.buf = self.buf[nl + 4 + size:]


def get_request(path):
    return ("GET %s HTTP/1.1\r\nHost: scale\r\n\r\n" % path).encode()


def connect_nb(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    return s


# ---------------------------------------------------------------- idle

def mode_idle(a):
    """Opens --count connections (--concurrency at a time), one GET each, then holds them open."""
    sel = selectors.DefaultSelector()
    req = get_request(a.path)
    deadline = time.monotonic() + a.setup_timeout
    conns = []          # sockets that completed their request
    errors = {}
    pending = {}        # sock -> Resp
    opened = 0
    while (opened < a.count or pending) and time.monotonic() < deadline:
        while opened < a.count and len(pending) < a.concurrency:
            opened += 1
            try:
                s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
                s.sendall(req)
                s.setblocking(False)
            except OSError as e:
                count(errors, "connect/send: " + type(e).__name__)
                continue
            pending[s] = Resp()
            sel.register(s, selectors.EVENT_READ)
        for key, _ in sel.select(0.5):
            s = key.fileobj
            try:
                d = s.recv(65536)
                if not d:
                    raise ConnectionError("EOF before the response")
                if not pending[s].feed(d):
                    continue
                if pending[s].status != 200:
                    raise ConnectionError("status %d" % pending[s].status)
                conns.append(s)
            except (OSError, ValueError) as e:
                count(errors, str(e)[:60] if isinstance(e, (ConnectionError, ValueError)) else type(e).__name__)
                s.close()
            sel.unregister(s)
            del pending[s]
    for s in pending:
        count(errors, "no response within the setup timeout")
        sel.unregister(s)
        s.close()
    emit({"event": "ready", "opened": opened, "held": len(conns), "errors": errors})
    for s in conns:
        sel.register(s, selectors.EVENT_READ)
    closed = set()
    end = time.monotonic() + a.max_seconds
    stdin = sys.stdin.buffer
    while time.monotonic() < end:
        line = stdin.readline()
        if not line:
            break
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == b"check":
            # Anything readable on an idle connection is a close (EOF, reset) or an unexpected byte.
            for key, _ in sel.select(0):
                s = key.fileobj
                try:
                    d = s.recv(4096)
                    why = "EOF" if not d else "unexpected bytes %r" % d[:40]
                except OSError as e:
                    why = type(e).__name__
                closed.add(s)
                sel.unregister(s)
                count(errors, "idle connection: " + why)
            emit({"event": "check", "open": len(conns) - len(closed), "closed": len(closed), "errors": errors})
        elif cmd[0] == b"probe":
            k = int(cmd[1])
            ok = 0
            perrs = {}
            for s in [c for c in conns if c not in closed][:k]:
                sel.unregister(s)
                try:
                    s.setblocking(True)
                    s.settimeout(5)
                    s.sendall(req)
                    r = Resp()
                    for _ in range(10000):
                        d = s.recv(65536)
                        if not d:
                            raise ConnectionError("EOF")
                        if r.feed(d):
                            break
                    if r.status == 200:
                        ok += 1
                    else:
                        count(perrs, "status %s" % r.status)
                    s.setblocking(False)
                    sel.register(s, selectors.EVENT_READ)
                except (OSError, ValueError) as e:
                    count(perrs, str(e)[:60] or type(e).__name__)
                    closed.add(s)
            emit({"event": "probe", "asked": k, "ok": ok, "errors": perrs})
        elif cmd[0] == b"quit":
            break
    for s in conns:
        s.close()
    return 0


# ---------------------------------------------------------------- active

def mode_active(a):
    """--conns keep-alive connections, each sending GET --path in a loop for --seconds."""
    sel = selectors.DefaultSelector()
    req = get_request(a.path)
    errors = {}
    done = 0
    state = {}
    t0 = time.monotonic()
    end = t0 + a.seconds

    def start(s):
        s.sendall(req)
        state[s] = Resp()

    for _ in range(a.conns):
        try:
            s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            start(s)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
        except OSError as e:
            count(errors, "connect: " + type(e).__name__)
    last_ok = {}
    while state and time.monotonic() < end:
        for key, _ in sel.select(0.2):
            s = key.fileobj
            try:
                d = s.recv(65536)
                if not d:
                    raise ConnectionError("EOF")
                if not state[s].feed(d):
                    continue
                if state[s].status != 200:
                    count(errors, "status %d" % state[s].status)
                else:
                    done += 1
                    last_ok[s] = time.monotonic()
                if time.monotonic() < end:
                    s.setblocking(True)
                    start(s)
                    s.setblocking(False)
                else:
                    del state[s]
                    sel.unregister(s)
            except (OSError, ValueError) as e:
                count(errors, str(e)[:60] or type(e).__name__)
                sel.unregister(s)
                del state[s]
                s.close()
    wall = time.monotonic() - t0
    emit({"event": "active", "requests": done, "errors": errors, "seconds": round(wall, 3),
          "rps": round(done / wall, 1) if wall else None, "conns_alive": len(state)})
    for s in list(state):
        s.close()
    return 0


# ---------------------------------------------------------------- sse

def sse_body(a):
    body = {"model": a.model, "messages": [{"role": "user", "content": "stream please"}],
            "max_tokens": a.tokens, "stream": True}
    return json.dumps(body).encode()


def check_stream(r, tokens):
    """None when r is a complete SSE stream with `tokens` token events ending in [DONE], else why not."""
    if r.status != 200:
        return "status %s" % r.status
    events = [ln[6:].strip() for ln in r.body.split(b"\n") if ln.startswith(b"data: ")]
    if not events or events[-1] != b"[DONE]":
        return "no [DONE]"
    n = 0
    for e in events[:-1]:
        try:
            if json.loads(e).get("choices"):
                n += 1
        except ValueError:
            return "bad event %r" % e[:40]
    if n != tokens:
        return "%d tokens, expected %d" % (n, tokens)
    return None


def mode_sse(a):
    """--streams concurrent streamed chat completions (Connection: close; the stream's end is checked
    by its framing: the last chunk, then [DONE] after exactly --tokens token events)."""
    sel = selectors.DefaultSelector()
    body = sse_body(a)
    req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: scale\r\nContent-Type: application/json\r\n"
           b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    errors = {}
    state = {}
    t0 = time.monotonic()
    deadline = t0 + a.timeout
    opened = 0
    completed = 0
    tokens = 0
    first_byte = []
    durations = []
    starts = {}
    while opened < a.streams and time.monotonic() < deadline:
        opened += 1
        try:
            s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
            s.sendall(req)
            s.setblocking(False)
        except OSError as e:
            count(errors, "connect/send: " + type(e).__name__)
            continue
        state[s] = Resp()
        starts[s] = time.monotonic()
        sel.register(s, selectors.EVENT_READ)
    all_open = time.monotonic()
    while state and time.monotonic() < deadline:
        for key, _ in sel.select(0.5):
            s = key.fileobj
            r = state[s]
            why = None
            try:
                d = s.recv(65536)
                if d and r.status is None and not r.buf:
                    first_byte.append(time.monotonic() - starts[s])
                if not d:
                    why = "EOF before the end of the stream" if not r.done else None
                elif not r.feed(d):
                    continue
                if why is None:
                    why = check_stream(r, a.tokens)
                    if why is None:
                        completed += 1
                        tokens += a.tokens
                        durations.append(time.monotonic() - starts[s])
            except (OSError, ValueError) as e:
                why = str(e)[:60] or type(e).__name__
            if why:
                count(errors, why)
            sel.unregister(s)
            del state[s]
            s.close()
    for s in state:
        count(errors, "not complete within %g s" % a.timeout)
        s.close()
    durations.sort()
    emit({"event": "sse", "streams": a.streams, "opened": opened, "completed": completed, "tokens": tokens,
          "errors": errors, "seconds": round(time.monotonic() - t0, 3), "open_s": round(all_open - t0, 3),
          "p50_s": round(durations[len(durations) // 2], 3) if durations else None,
          "max_s": round(durations[-1], 3) if durations else None})
    return 0


# ---------------------------------------------------------------- slowloris

def mode_slowloris(a):
    """--count connections each send a request head one byte every --interval seconds and never end it;
    reports when and how the proxy cut each one (408 answer, EOF or reset), timed from its first byte.
    For --duration seconds a client that was cut is replaced by a new one, so --count stay in place."""
    sel = selectors.DefaultSelector()
    head = b"GET /slow HTTP/1.1\r\nHost: scale\r\nX-Slow: "
    errors = {}
    live = {}
    sent_max = [0]
    opened = [0]

    def open_one():
        try:
            s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setblocking(False)
        except OSError as e:
            count(errors, "connect: " + type(e).__name__)
            return
        opened[0] += 1
        live[s] = {"sent": 0, "first": None, "next": 0.0, "got": b""}
        sel.register(s, selectors.EVENT_READ)

    for _ in range(a.count):
        open_one()
    emit({"event": "connected", "count": len(live), "errors": errors})
    cut = []            # seconds from first byte to the cut
    how = {}
    t0 = time.monotonic()
    replace_until = t0 + a.duration
    end = replace_until + a.timeout
    while live and time.monotonic() < end:
        now = time.monotonic()
        for s, st in live.items():
            if now >= st["next"]:
                b = head[st["sent"]:st["sent"] + 1] if st["sent"] < len(head) else b"a"
                try:
                    s.send(b)
                    st["sent"] += 1
                    if st["first"] is None:
                        st["first"] = now
                except BlockingIOError:
                    pass
                except OSError:
                    pass  # the read side reports the cut
                st["next"] = now + a.interval
        gone = 0
        for key, _ in sel.select(0.05):
            s = key.fileobj
            st = live[s]
            try:
                d = s.recv(4096)
                if d:
                    st["got"] += d
                    continue
                kind = "close"
            except BlockingIOError:
                continue
            except OSError as e:
                kind = "reset" if isinstance(e, ConnectionResetError) else type(e).__name__
            if st["got"]:
                line = st["got"].split(b"\r\n", 1)[0]
                kind = "408" if line.startswith(b"HTTP/1.1 408") or line.startswith(b"HTTP/1.0 408") \
                    else "answer %r" % line[:40]
            count(how, kind)
            cut.append(time.monotonic() - (st["first"] or t0))
            sent_max[0] = max(sent_max[0], st["sent"])
            sel.unregister(s)
            del live[s]
            s.close()
            gone += 1
        if time.monotonic() < replace_until:
            for _ in range(gone):
                open_one()
    for s, st in live.items():
        sent_max[0] = max(sent_max[0], st["sent"])
        s.close()
    cut.sort()
    emit({"event": "slowloris", "count": opened[0], "cut": len(cut), "not_cut": len(live), "how": how,
          "errors": errors, "cut_p50_s": round(cut[len(cut) // 2], 3) if cut else None,
          "cut_max_s": round(cut[-1], 3) if cut else None, "bytes_max": sent_max[0]})
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("idle")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--path", default="/health")
    p.add_argument("--concurrency", type=int, default=200)
    p.add_argument("--setup-timeout", type=float, default=60.0)
    p.add_argument("--max-seconds", type=float, default=300.0)
    p = sub.add_parser("active")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--conns", type=int, default=50)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--path", default="/health")
    p = sub.add_parser("sse")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--streams", type=int, required=True)
    p.add_argument("--tokens", type=int, default=20)
    p.add_argument("--model", default="gpusim-8b")
    p.add_argument("--timeout", type=float, default=30.0)
    p = sub.add_parser("slowloris")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--interval", type=float, default=0.5)
    p.add_argument("--duration", type=float, default=0.0, help="seconds during which cut clients are replaced")
    p.add_argument("--timeout", type=float, default=15.0)
    a = ap.parse_args()
    for k in ("count", "conns", "streams", "concurrency", "tokens"):
        v = getattr(a, k, None)
        if v is not None and not 1 <= v <= 20000:
            ap.error(f"--{k} must be in 1..20000")
    if getattr(a, "duration", 0) and not 0 <= a.duration <= 3600:
        ap.error("--duration must be in [0, 3600]")
    for k in ("seconds", "timeout", "interval", "setup_timeout", "max_seconds"):
        v = getattr(a, k, None)
        if v is not None and not 0 < v <= 3600:
            ap.error(f"--{k.replace('_', '-')} must be in (0, 3600]")
    raise_nofile()
    return {"idle": mode_idle, "active": mode_active, "sse": mode_sse, "slowloris": mode_slowloris}[a.mode](a)


if __name__ == "__main__":
    sys.exit(main())
