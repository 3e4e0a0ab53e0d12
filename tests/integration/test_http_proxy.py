"""HTTP/1.1 proxy scenarios with real clients (http.client, raw sockets) against a test backend:
keep-alive, chunked both ways, pipelining, HEAD/204/304/close-delimited framing, forwarding
headers, SSE pass-through (each event reaches the client before the backend sends the next),
WebSocket tunnel, retries and error replies. Every case runs on every io model."""
import hashlib
import http.client
import json
import os
import socket
import time

from http_backend import HttpBackend
from voro_harness import dead_port, Runner, Voro, connect, free_port, is_closed_by_peer, recv_until_eof, wait_until


def config(port, servers, extra_pool="", extra="", threads=1):
    text = (f"[server]\nthreads = {threads}\n[node]\nadmin_address = {{admin}}\n{extra}"
            f"[listener web]\nmode = http\nbind = 127.0.0.1:{port}\npool = web\n"
            f"[pool web]\nretries = 1\nlearn_models = false\n{extra_pool}")
    if "health_check" not in extra_pool:
        text += "health_check = none\n"
    for i, s in enumerate(servers):
        text += f"server = s{i} {s}\n"
    return text


def read_response(sock_file, head=False):
    """Reads one HTTP/1.1 response from a buffered socket file: (status, headers, body)."""
    status_line = sock_file.readline().decode()
    assert status_line.startswith("HTTP/1.1 "), status_line
    status = int(status_line.split()[1])
    headers = {}
    while True:
        line = sock_file.readline().decode()
        if line in ("\r\n", ""):
            break
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    body = b""
    if head:
        return status, headers, body
    if "content-length" in headers:
        body = sock_file.read(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int(sock_file.readline().split(b";")[0], 16)
            chunk = sock_file.read(size + 2)
            body += chunk[:size]
            if size == 0:
                break
    return status, headers, body


class Env:
    def __init__(self, r, model, n_backends=1, **kw):
        self.backends = [HttpBackend(f"b{i}") for i in range(n_backends)]
        self.port = free_port()
        self.v = Voro(r.args.voro, config(self.port, [b.addr for b in self.backends], **kw), io_model=model)

    def client(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def close(self):
        try:
            self.v.close()
        finally:
            for b in self.backends:
                b.close()


def case_keepalive_and_headers(r, model):
    e = Env(r, model)
    try:
        c = e.client()
        for i in range(5):
            c.request("GET", f"/echo?i={i}", headers={"Connection": "keep-alive, X-Drop-Me", "X-Drop-Me": "1",
                                                   "Keep-Alive": "timeout=5", "X-Forwarded-For": "198.51.100.9"})
            resp = c.getresponse()
            info = json.loads(resp.read())
            assert resp.status == 200
            h = info["headers"]
            assert "x-drop-me" not in h and "keep-alive" not in h and "connection" not in h, h
            assert h["x-forwarded-for"] == "198.51.100.9, 127.0.0.1", h
            assert h["x-forwarded-proto"] == "http"
            assert "voro" in h["via"], h
            assert len(h["x-request-id"]) == 32, h
            assert "voro" in resp.getheader("Via"), resp.getheaders()
            assert resp.getheader("Keep-Alive") is None
        c.close()
        # (the control plane's own probes, e.g. GET /v1/models, are not client requests)
        ids = {req[2]["x-request-id"] for req in e.backends[0].requests if req[1].startswith("/echo")}
        assert len(ids) == 5, ids  # a fresh id per request
        # A client-supplied id is kept.
        c = e.client()
        c.request("GET", "/echo", headers={"X-Request-Id": "abc-123"})
        assert json.loads(c.getresponse().read())["headers"]["x-request-id"] == "abc-123"
        c.close()
    finally:
        e.close()


def case_chunked_both_ways(r, model):
    e = Env(r, model)
    try:
        c = e.client()
        payload = os.urandom(300000)
        pieces = [payload[i:i + 7000] for i in range(0, len(payload), 7000)]
        c.request("POST", "/echo", body=iter(pieces), encode_chunked=True,
                  headers={"Transfer-Encoding": "chunked"})
        info = json.loads(c.getresponse().read())
        assert info["body_sha256"] == hashlib.sha256(payload).hexdigest() and info["body_len"] == len(payload)
        c.request("GET", "/chunked?n=50")
        resp = c.getresponse()
        body = resp.read()
        assert body == b"".join((f"piece-{i};" * 100).encode() for i in range(50))
        assert resp.getheader("Transfer-Encoding") == "chunked"
        c.request("POST", "/echo", body=b"x" * 1000)  # and the connection is still in sync
        assert json.loads(c.getresponse().read())["body_len"] == 1000
        c.close()
    finally:
        e.close()


def case_pipelining(r, model):
    e = Env(r, model)
    try:
        s = connect(e.port)
        reqs = b"".join(b"GET /echo?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(4))
        reqs += b"POST /echo?n=4 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        reqs += b"GET /echo?n=5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        s.sendall(reqs)
        f = s.makefile("rb")
        for i in range(6):
            status, headers, body = read_response(f)
            assert status == 200
            assert json.loads(body)["path"] == f"/echo?n={i}", (i, body)
        assert f.read() == b""  # closed after the Connection: close request
        s.close()
    finally:
        e.close()


def case_framing_head_204_304_close(r, model):
    e = Env(r, model)
    try:
        s = connect(e.port)
        f = s.makefile("rb")
        s.sendall(b"HEAD /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = read_response(f, head=True)
        assert status == 200 and int(headers["content-length"]) > 0
        for path, code in ((b"/204", 204), (b"/304", 304)):
            s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            status_line = f.readline()
            assert status_line.startswith(b"HTTP/1.1 %d" % code), status_line
            while f.readline() not in (b"\r\n", b""):
                pass  # no body follows, whatever Content-Length says
        s.sendall(b"GET /echo?after HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = read_response(f)
        assert status == 200 and json.loads(body)["path"] == "/echo?after"
        # A close-delimited response ends the client connection too.
        s.sendall(b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n")
        rest = f.read()
        assert rest.startswith(b"HTTP/1.1 200") and rest.endswith(b"until-close-body"), rest
        assert b"connection: close" in rest.lower()
        s.close()
    finally:
        e.close()


def case_sse_passthrough(r, model):
    e = Env(r, model)
    try:
        n = 6
        s = connect(e.port)
        s.sendall(b"GET /sse?key=a&n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % n)
        f = s.makefile("rb")
        assert f.readline().startswith(b"HTTP/1.1 200")
        while f.readline() not in (b"\r\n", b""):
            pass
        got = []
        for i in range(n):
            size = int(f.readline(), 16)
            event = f.read(size + 2)[:-2]
            got.append(event)
            # The backend sends token i+1 only after this ack: had Voro buffered token i, this
            # loop would stall and the backend would give up after 5 s.
            if i + 1 < n:
                e.backends[0].sse_acks["a"][i].set()
        assert got == [f"data: token-{i}\n\n".encode() for i in range(n)], got
        assert f.readline() == b"0\r\n"
        s.close()
    finally:
        e.close()


def case_websocket_tunnel(r, model):
    e = Env(r, model)
    try:
        s = connect(e.port)
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        data = b""
        while b"hello-from-ws" not in data:
            d = s.recv(4096)
            assert d, data
            data += d
        assert data.startswith(b"HTTP/1.1 101"), data
        assert b"upgrade: websocket" in data.lower()
        for i in range(20):
            msg = os.urandom(1000 + i)
            s.sendall(msg)
            echo = b""
            while len(echo) < len(msg):
                d = s.recv(65536)
                assert d
                echo += d
            assert echo == msg
        s.close()
    finally:
        e.close()


def case_retry_and_errors(r, model):
    dead = f"127.0.0.1:{dead_port()}"
    good = HttpBackend("good")
    port = free_port()
    v = Voro(r.args.voro, config(port, [dead, good.addr]), io_model=model)
    try:
        for i in range(4):  # round robin lands on the dead server every other time: retried
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", f"/echo?{i}")
            resp = c.getresponse()
            assert resp.status == 200 and json.loads(resp.read())["backend"] == "good"
            c.close()
        # A POST whose body went out is never replayed: the backend drops it -> 502.
        before = len(good.requests)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("POST", "/drop", body=b"once")
        resp = c.getresponse()
        body = json.loads(resp.read())
        assert resp.status == 502, resp.status
        assert "error" in body and body["error"]["message"], body
        c.close()
        drops = [req for req in good.requests[before:] if req[1] == "/drop"]
        assert len(drops) == 1, drops
        # An idempotent GET that got no response byte is retried once elsewhere... here the
        # only other server is dead, so the answer is 502 with a reason.
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/drop")
        resp = c.getresponse()
        assert resp.status == 502, resp.status
        assert resp.getheader("Content-Type") == "application/json"
        c.close()
        # Server errors pass through untouched.
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/status?code=503")
        resp = c.getresponse()
        assert resp.status == 503 and resp.read() == b"status body"
        c.close()
    finally:
        v.close()
        good.close()


def case_no_server_503(r, model):
    port = free_port()
    v = Voro(r.args.voro, config(port, [f"127.0.0.1:{dead_port()}"], extra_pool="health_check = tcp\nhealth_interval = 100ms\nhealth_rise = 1\nhealth_fall = 1\n"),
             io_model=model)
    try:
        wait_until(lambda: v.stats()["pools"][0]["servers"][0]["health"] == "down", what="server down")
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/")
        resp = c.getresponse()
        body = json.loads(resp.read())
        assert resp.status == 503, resp.status
        assert "no healthy server" in body["error"]["message"], body
        c.close()
    finally:
        v.close()


def case_backend_closes_pooled_connection(r, model):
    e = Env(r, model, extra_pool="upstream_max_idle = 8\n")
    try:
        c = e.client()
        for i in range(6):
            # /closeafter advertises keep-alive, then closes its end: the next request must
            # still succeed (the pooled connection is found dead, or retried).
            c.request("GET", "/closeafter" if i % 2 == 0 else "/echo")
            resp = c.getresponse()
            assert resp.status == 200, (i, resp.status)
            resp.read()
        c.close()
    finally:
        e.close()


def case_access_log(r, model):
    e = Env(r, model, extra="[http]\naccess_log = on\n")
    try:
        c = e.client()
        c.request("GET", "/echo?logged")
        c.getresponse().read()
        c.request("GET", "/status?code=503")
        c.getresponse().read()
        c.close()
        wait_until(lambda: "path=/status?code=503" in e.v.log_text(), what="access log lines")
        log = e.v.log_text()
        line = [l for l in log.splitlines() if "path=/echo?logged" in l][0]
        assert "access: client=127.0.0.1 method=GET" in line and "status=200" in line and "server=s0" in line, line
        assert "status=503" in [l for l in log.splitlines() if "path=/status" in l][0]
    finally:
        e.close()


def main():
    r = Runner()
    cases = [case_keepalive_and_headers, case_chunked_both_ways, case_pipelining, case_framing_head_204_304_close,
             case_sse_passthrough, case_websocket_tunnel, case_retry_and_errors, case_no_server_503,
             case_backend_closes_pooled_connection, case_access_log]
    for model in r.models:
        for c in cases:
            r.run(f"{c.__name__[5:]}[{model}]", c, r, model)
    r.finish()


if __name__ == "__main__":
    main()
