"""Garbage and request-smuggling defences of the HTTP proxy, over raw sockets: every case gets
the right status with a JSON reason and a closed connection, nothing reaches the backend, and
a well-formed request on a new connection still works afterwards."""
import json
import socket
import time

from http_backend import HttpBackend
from voro_harness import Runner, Voro, connect, free_port

CASES = [
    # (name, raw request, expected status)
    ("cl_and_te", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("duplicate_cl", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    ("same_duplicate_cl", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400),
    ("cl_list", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello", 400),
    ("cl_not_a_number", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5x\r\n\r\nhello", 400),
    ("cl_negative", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    ("te_last_not_chunked", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
    ("te_unknown", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: bogus\r\n\r\n", 501),
    ("bad_chunk_size", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk_size_overflow", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", 400),
    ("space_before_colon", b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Foo : bar\r\n\r\n", 400),
    ("invalid_header_char", b"GET /echo HTTP/1.1\r\nHost: x\r\nX-F\x01oo: bar\r\n\r\n", 400),
    ("invalid_value_char", b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Foo: b\x00ar\r\n\r\n", 400),
    ("obs_fold", b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Foo: bar\r\n  baz\r\n\r\n", 400),
    ("bare_lf", b"GET /echo HTTP/1.1\nHost: x\n\n", 400),
    ("missing_host", b"GET /echo HTTP/1.1\r\nX-Foo: bar\r\n\r\n", 400),
    ("duplicate_host", b"GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("bad_method", b"G(T /echo HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("http2_version", b"GET /echo HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    ("http09", b"GET /echo\r\n\r\n", 400),
    ("long_request_line", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ("too_many_headers", b"GET /echo HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n", 431),
    ("huge_header", b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 40000 + b"\r\n\r\n", 431),
    ("te_in_http10", b"POST /echo HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 this is a TLS hello\r\n\r\n", 400),
    ("body_too_large", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", 413),
]


def config(port, backend):
    return (f"[server]\nthreads = 1\n[node]\nadmin_address = {{admin}}\n"
            f"[http]\nmax_body = 1m\nheader_timeout = 500ms\n"
            f"[listener web]\nmode = http\nbind = 127.0.0.1:{port}\npool = web\n"
            f"[pool web]\nhealth_check = none\nlearn_models = false\nserver = b {backend}\n")


def read_all(s, timeout=5):
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return data, True
            data += d
    except ConnectionResetError:
        return data, True
    except socket.timeout:
        return data, False


def check_reply(data, closed, status):
    assert closed, f"connection not closed; got {data[:200]!r}"
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status), head[:100]
    reason = json.loads(body)["error"]["message"]
    assert reason, body
    assert b"connection: close" in head.lower()


def case_garbage(r, model, name, raw, status):
    b = HttpBackend("b")
    port = free_port()
    v = Voro(r.args.voro, config(port, b.addr), io_model=model)
    try:
        s = connect(port)
        try:
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data, closed = read_all(s)
        s.close()
        check_reply(data, closed, status)
        assert not any(req[1] != "/ok" for req in b.requests), b.requests
        # The proxy is fine: a good request on a new connection works.
        s = connect(port)
        s.sendall(b"GET /echo?ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data, closed = read_all(s)
        assert data.startswith(b"HTTP/1.1 200"), data[:100]
        s.close()
    finally:
        v.close()
        b.close()


def case_slowloris(r, model):
    b = HttpBackend("b")
    port = free_port()
    v = Voro(r.args.voro, config(port, b.addr), io_model=model)
    try:
        s = connect(port)
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n")
        for _ in range(20):  # trickle a header line forever; the 500 ms head timeout must fire
            try:
                s.sendall(b"X: y\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.1)
        data, closed = read_all(s)
        s.close()
        check_reply(data, closed, 408)
        assert not b.requests
    finally:
        v.close()
        b.close()


def main():
    r = Runner()
    for model in r.models:
        for name, raw, status in CASES:
            r.run(f"{name}[{model}]", case_garbage, r, model, name, raw, status)
        r.run(f"slowloris[{model}]", case_slowloris, r, model)
    r.finish()


if __name__ == "__main__":
    main()
