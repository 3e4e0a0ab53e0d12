"""Interim (1xx) responses and HTTP/1.0 clients through the HTTP proxy: 103 Early Hints and
100 Continue are relayed with their headers to HTTP/1.1 clients and never reach HTTP/1.0 ones
(RFC 9110 15.2); a chunked response reaches an HTTP/1.0 client de-chunked and close-delimited
(server-sent events still flow event by event); an unsolicited 101 becomes a 502 and its
server connection is not reused. Every case runs on every io model."""
import json
import socket

from http_backend import HttpBackend
from voro_harness import Runner, Voro, connect, free_port, recv_until_eof

PIECES_50 = b"".join((f"piece-{i};" * 100).encode() for i in range(50))


class Backend1x(HttpBackend):
    """The test backend plus responses a conforming origin would not send to every client:
    1xx heads with headers, chunked bodies whatever the request's version, a 101 nobody asked for."""

    def _respond(self, c, method, path, headers, body):
        route = path.split("?")[0]
        if route == "/103":
            c.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n"
                      b"Link: </app.js>; rel=preload; as=script\r\nX-Hint: early\r\n\r\n")
            c.sendall(b"HTTP/1.1 100 Continue\r\nX-Hint: second\r\n\r\n"
                      b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nLink: </style.css>; rel=preload\r\n\r\nfinal")
            return True
        if route == "/trailer":
            # Chunk extensions, a chunk split across sends, trailers: all framing, none of it body.
            c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5;ext=1\r\nhel")
            c.sendall(b"lo\r\n6\r\n world\r\n0\r\nX-Sum: abc\r\n\r\n")
            return True
        if route == "/te-gzip":
            c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
            return True
        if route == "/fake101":
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n")
            return True  # and goes on reading requests on this connection, as if nothing happened
        return super()._respond(c, method, path, headers, body)


def config(port, server):
    return (f"[server]\nthreads = 1\n[node]\nadmin_address = {{admin}}\n"
            f"[listener web]\nmode = http\nbind = 127.0.0.1:{port}\npool = web\n"
            f"[pool web]\nretries = 0\nlearn_models = false\nhealth_check = none\nupstream_max_idle = 8\n"
            f"server = s0 {server}\n")


class Env:
    def __init__(self, r, model):
        self.b = Backend1x("b")
        self.port = free_port()
        try:
            self.v = Voro(r.args.voro, config(self.port, self.b.addr), io_model=model)
        except BaseException:
            self.b.close()
            raise

    def close(self):
        try:
            self.v.close()
        finally:
            self.b.close()


class Reader:
    """Reads HTTP heads and bodies off a raw client socket, keeping what follows."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b""

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise AssertionError(f"EOF; have {self.buf!r}")
        self.buf += d

    def head(self):
        """(status, version, [(name lower, value)], raw head)."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        raw, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw.decode("latin-1").split("\r\n")
        version, status = lines[0].split(" ")[0], int(lines[0].split(" ")[1])
        headers = []
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers.append((k.strip().lower(), v.strip()))
        return status, version, headers, raw

    def exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def until_eof(self):
        out = self.buf + recv_until_eof(self.s)
        self.buf = b""
        return out


def values(headers, name):
    return [v for k, v in headers if k == name]


def case_103_and_100_relayed_with_headers(r, model):
    e = Env(r, model)
    try:
        s = connect(e.port)
        rd = Reader(s)
        s.sendall(b"GET /103 HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, h, raw = rd.head()
        assert status == 103, raw
        assert values(h, "link") == ["</style.css>; rel=preload; as=style", "</app.js>; rel=preload; as=script"], raw
        assert values(h, "x-hint") == ["early"] and "voro" in " ".join(values(h, "via")), raw
        assert not values(h, "connection") and not values(h, "content-length"), raw
        status, _, h, raw = rd.head()
        assert status == 100 and values(h, "x-hint") == ["second"], raw
        status, _, h, raw = rd.head()
        assert status == 200 and rd.exactly(5) == b"final", raw
        # Interim heads are not the response: the connection is still in sync.
        s.sendall(b"GET /echo?after HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, h, raw = rd.head()
        assert status == 200 and json.loads(rd.exactly(int(values(h, "content-length")[0])))["path"] == "/echo?after"
        # 100 Continue to a client that waits for it before sending its body.
        s.sendall(b"POST /100x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        status, _, h, raw = rd.head()
        assert status == 100 and "voro" in " ".join(values(h, "via")), raw
        s.sendall(b"hello")
        status, _, h, raw = rd.head()
        info = json.loads(rd.exactly(int(values(h, "content-length")[0])))
        assert status == 200 and info["body_len"] == 5, (raw, info)
        s.close()
    finally:
        e.close()


def case_no_1xx_to_http10(r, model):
    e = Env(r, model)
    try:
        s = connect(e.port)
        rd = Reader(s)
        s.sendall(b"GET /103 HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
        status, _, h, raw = rd.head()
        assert status == 200 and rd.exactly(5) == b"final", raw  # neither the 103 nor the 100
        assert values(h, "link") == ["</style.css>; rel=preload"], raw
        # A 1.0 client does not wait for 100 Continue; the backend sends one anyway.
        s.sendall(b"POST /100x HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nExpect: 100-continue\r\n"
                  b"Content-Length: 5\r\n\r\nhello")
        status, _, h, raw = rd.head()
        assert status == 200, raw
        info = json.loads(rd.exactly(int(values(h, "content-length")[0])))
        assert info["body_len"] == 5 and info["headers"]["connection"] == "close", info  # 1.0 upstream
        s.close()
    finally:
        e.close()


def case_chunked_to_http10_dechunked(r, model):
    e = Env(r, model)
    try:
        for conn in (b"", b"Connection: keep-alive\r\n"):
            s = connect(e.port)
            rd = Reader(s)
            s.sendall(b"GET /chunked?n=50 HTTP/1.0\r\nHost: x\r\n" + conn + b"\r\n")
            status, _, h, raw = rd.head()
            assert status == 200 and not values(h, "transfer-encoding"), raw
            assert values(h, "connection") == ["close"] and not values(h, "content-length"), raw
            body = rd.until_eof()  # close-delimited: the end of the body is the end of the connection
            assert body == PIECES_50, (len(body), body[:80])
            s.close()
        # Extensions, a chunk split across reads and trailers: only the payload arrives.
        s = connect(e.port)
        rd = Reader(s)
        s.sendall(b"GET /trailer HTTP/1.0\r\n\r\n")
        status, _, h, raw = rd.head()
        assert status == 200 and not values(h, "transfer-encoding") and not values(h, "trailer"), raw
        assert rd.until_eof() == b"hello world"
        s.close()
        # HEAD: no body, and no Transfer-Encoding a 1.0 client cannot know.
        s = connect(e.port)
        rd = Reader(s)
        s.sendall(b"HEAD /chunked HTTP/1.0\r\n\r\n")
        status, _, h, raw = rd.head()
        assert status == 200 and not values(h, "transfer-encoding"), raw
        assert rd.until_eof() == b""
        s.close()
        # A transfer coding other than chunked cannot be undone for a 1.0 client: 502.
        s = connect(e.port)
        rd = Reader(s)
        s.sendall(b"GET /te-gzip HTTP/1.0\r\n\r\n")
        status, _, h, raw = rd.head()
        assert status == 502 and b"transfer coding" in rd.until_eof(), raw
        s.close()
        # Unchanged for HTTP/1.1 clients: chunked as sent, connection kept.
        s = connect(e.port)
        rd = Reader(s)
        s.sendall(b"GET /trailer HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, h, raw = rd.head()
        assert values(h, "transfer-encoding") == ["chunked"], raw
        framed = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: abc\r\n\r\n"
        assert rd.exactly(len(framed)) == framed
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, h, raw = rd.head()
        assert status == 200, raw
        s.close()
        # A 1.0 keep-alive client with a Content-Length response keeps its connection.
        s = connect(e.port)
        rd = Reader(s)
        for i in range(2):
            s.sendall(b"GET /echo?%d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" % i)
            status, _, h, raw = rd.head()
            assert status == 200 and values(h, "connection") == ["keep-alive"], raw
            assert json.loads(rd.exactly(int(values(h, "content-length")[0])))["path"] == f"/echo?{i}"
        s.close()
    finally:
        e.close()


def case_sse_to_http10_streams(r, model):
    e = Env(r, model)
    try:
        n = 6
        s = connect(e.port)
        rd = Reader(s)
        s.sendall(b"GET /sse?key=old&n=%d HTTP/1.0\r\nHost: x\r\n\r\n" % n)
        status, _, h, raw = rd.head()
        assert status == 200 and not values(h, "transfer-encoding"), raw
        for i in range(n):
            event = f"data: token-{i}\n\n".encode()
            got = rd.exactly(len(event))
            assert got == event, (i, got)
            # The backend sends event i+1 only after this ack: had Voro held event i back (or
            # waited for the end of the body to de-chunk it), the stream would stall.
            if i + 1 < n:
                e.b.sse_acks["old"][i].set()
        assert rd.until_eof() == b""
        s.close()
    finally:
        e.close()


def case_unsolicited_101_is_502(r, model):
    e = Env(r, model)
    try:
        s = connect(e.port)
        rd = Reader(s)
        s.sendall(b"GET /fake101 HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, h, raw = rd.head()
        assert status == 502, raw
        body = rd.until_eof()
        assert "101" in json.loads(body)["error"]["message"], body
        s.close()
        # The connection that sent it is not pooled: the next request opens a new one.
        assert e.b.connections == 1, e.b.connections
        s = connect(e.port)
        rd = Reader(s)
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, h, raw = rd.head()
        assert status == 200 and json.loads(rd.exactly(int(values(h, "content-length")[0])))["path"] == "/echo"
        assert e.b.connections == 2, e.b.connections
        s.close()
        # An HTTP/1.0 client cannot upgrade (RFC 9110 7.8): a 101 for it is unsolicited too.
        s = connect(e.port)
        rd = Reader(s)
        s.sendall(b"GET /ws HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        status, _, h, raw = rd.head()
        assert status != 101, raw
        s.close()
    finally:
        e.close()


def main():
    r = Runner()
    cases = [case_103_and_100_relayed_with_headers, case_no_1xx_to_http10, case_chunked_to_http10_dechunked,
             case_sse_to_http10_streams, case_unsolicited_101_is_502]
    for model in r.models:
        for c in cases:
            r.run(f"{c.__name__[5:]}[{model}]", c, r, model)
    r.finish()


if __name__ == "__main__":
    main()
