"""Route matching through the real proxy on every io model: percent-encoded and dot-segment
paths (normalised before matching, and forwarded normalised), '/v10' against a '/v1' prefix,
absolute-form targets (the authority is the host), refused targets (400 with a JSON reason that
never reaches a server), and X-Model against the body's model (conflict 400, a route that
refuses the header). Each case checks which pool's server got the request and the exact
request target it received."""
import json
import socket

from http_backend import HttpBackend
from voro_harness import Runner, Voro, free_port


def config(port, b):
    return ("[server]\nthreads = 1\n[node]\nadmin_address = {admin}\n"
            f"[listener web]\nmode = http\nbind = 127.0.0.1:{port}\npool = gpu\n"
            f"[pool gpu]\nlearn_models = false\nhealth_check = none\nserver = g0 {b['g'].addr} models=llama,mistral\n"
            f"[pool other]\nlearn_models = false\nhealth_check = none\nserver = o0 {b['o'].addr}\n"
            f"[pool v1]\nlearn_models = false\nhealth_check = none\nserver = v0 {b['v'].addr}\n"
            "[route admin]\npath_prefix = /admin\npool = other\n"
            "[route raw]\npath_prefix = /raw\npath_prefix_mode = string\npool = other\n"
            "[route strict]\nhost = strict.example.com\nmodel = *\nmodel_from_header = no\npool = gpu\n"
            "[route llama]\npath_prefix = /v1/\nmodel = llama\npool = gpu\n"
            "[route v1]\npath_prefix = /v1\npool = v1\n"
            "[route api-host]\nhost = api.example.com\npool = other\n")


def exchange(port, target, headers=(("Host", "x"),), body=None, method=None, ctype="application/json"):
    """Sends one request with the exact target bytes on a fresh connection (Connection: close)
    and reads the whole answer: (status, headers dict, body bytes)."""
    method = method or ("POST" if body is not None else "GET")
    lines = [f"{method} {target} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers] + ["Connection: close"]
    if body is not None:
        lines.append(f"Content-Type: {ctype}\r\nContent-Length: {len(body)}")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw)
        data = b""
        for _ in range(10000):  # bounded: the answer is small, EOF ends it
            d = s.recv(65536)
            if not d:
                break
            data += d
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), data[:200]
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), hdrs, rest


class Env:
    def __init__(self, r, model):
        self.b = {name: HttpBackend(name) for name in ("g", "o", "v")}
        self.port = free_port()
        try:
            self.v = Voro(r.args.voro, config(self.port, self.b), io_model=model)
        except Exception:
            for b in self.b.values():
                b.close()
            raise

    def seen(self):
        return {n: len(b.requests) for n, b in self.b.items()}

    def close(self):
        try:
            self.v.close()
        finally:
            for b in self.b.values():
                b.close()


def expect_forwarded(e, target, backend, path, headers=(("Host", "x"),), body=None, method=None, **kw):
    """The request reached `backend` (and no other) with request target `path`."""
    before = e.seen()
    status, hdrs, rbody = exchange(e.port, target, headers, body, method, **kw)
    after = e.seen()
    assert hdrs.get("x-backend") == backend, (target, status, hdrs, rbody[:300])
    assert after[backend] == before[backend] + 1, (target, before, after)
    assert sum(after.values()) == sum(before.values()) + 1, (target, before, after)
    got = e.b[backend].requests[-1][1]
    assert got == path, f"{target}: server got {got!r}, expected {path!r}"


def expect_refused(e, target, status, code, headers=(("Host", "x"),), body=None, method=None):
    """Voro answered `status` itself with a JSON error of `code`; no server saw the request."""
    before = e.seen()
    got, hdrs, rbody = exchange(e.port, target, headers, body, method)
    assert got == status, (target, got, rbody[:300])
    assert "x-backend" not in hdrs, (target, hdrs)
    err = json.loads(rbody)["error"]
    assert err["code"] == code and err["message"], (target, err)
    assert e.seen() == before, (target, before, e.seen())
    return err


def case_paths(r, model):
    e = Env(r, model)
    try:
        expect_forwarded(e, "/admin/x", "o", "/admin/x")
        expect_forwarded(e, "/admin?q=1", "o", "/admin?q=1")
        # segment boundary: /v1 is not /v10, /admin is not /administrator
        expect_refused(e, "/administrator", 404, "no_route")
        expect_refused(e, "/v10/x", 404, "no_route")
        expect_forwarded(e, "/v1", "v", "/v1")
        expect_forwarded(e, "/v1?x=1", "v", "/v1?x=1")
        # path_prefix_mode = string: a plain byte prefix
        expect_forwarded(e, "/rawdata", "o", "/rawdata")
        # normalised before matching, and forwarded normalised
        expect_forwarded(e, "/v1/../admin/users", "o", "/admin/users")
        expect_forwarded(e, "/%61dmin/a%2db%7e?q=%2F/../x", "o", "/admin/a-b~?q=%2F/../x")
        expect_forwarded(e, "//admin//x/./y/", "o", "/admin/x/y/")
        expect_forwarded(e, "/v1/%2e%2E/admin", "o", "/admin")
        expect_forwarded(e, "/v10/../v1", "v", "/v1")
        expect_forwarded(e, "/admin/%c3%a9", "o", "/admin/%C3%A9")
        # what cannot be normalised safely: 400 with the reason, no server reached
        for target, why in (("/v1%2F..%2Fadmin", "encoded '/'"), ("/admin%00", "NUL"), ("/../admin", "root"),
                            ("/v1/../../admin", "root"), ("/admin%zz", "percent-encoding"),
                            ("/admin%5c..%5cx", "'\\'"), ("/admin\\..\\x", "backslash"), ("/admin%0d%0a", "control")):
            err = expect_refused(e, target, 400, "invalid_request_target")
            assert why in err["message"], (target, err)
        expect_refused(e, "*", 400, "invalid_request_target")
    finally:
        e.close()


def case_absolute_form(r, model):
    e = Env(r, model)
    try:
        # the authority is the host (routes see it) and the server gets the origin form
        expect_forwarded(e, "http://api.example.com/v10/x", "o", "/v10/x", headers=(("Host", "api.example.com"),))
        expect_forwarded(e, "HTTP://API.example.com:80/v10?y", "o", "/v10?y", headers=(("Host", "api.example.com"),))
        expect_forwarded(e, "http://x/v1/../admin", "o", "/admin")
        expect_forwarded(e, "http://api.example.com?z=1", "o", "/?z=1", headers=(("Host", "api.example.com"),))
        expect_refused(e, "http://x/v10", 404, "no_route")
        # HTTP/1.0 without Host: the authority alone decides
        before = e.seen()
        with socket.create_connection(("127.0.0.1", e.port), timeout=10) as s:
            s.sendall(b"GET http://api.example.com/v10/y HTTP/1.0\r\n\r\n")
            data = b""
            for _ in range(10000):
                d = s.recv(65536)
                if not d:
                    break
                data += d
        assert b"X-Backend: o" in data, data[:300]
        assert e.seen()["o"] == before["o"] + 1
        assert e.b["o"].requests[-1][1] == "/v10/y", e.b["o"].requests[-1][1]
        # a Host naming another origin, userinfo, other schemes: refused
        expect_refused(e, "http://api.example.com/v10", 400, "invalid_request_target", headers=(("Host", "x"),))
        expect_refused(e, "http://x:8080/v1", 400, "invalid_request_target", headers=(("Host", "x"),))
        expect_refused(e, "http://u@x/v1", 400, "invalid_request_target")
        expect_refused(e, "ftp://x/v1", 400, "invalid_request_target")
    finally:
        e.close()


def case_model_header(r, model):
    e = Env(r, model)
    llama, mistral = b'{"model":"llama","messages":[]}', b'{"messages":[],"model":"mistral"}'
    try:
        # header alone (no body) and body alone decide
        expect_forwarded(e, "/v1/chat", "g", "/v1/chat", headers=(("Host", "x"), ("X-Model", "llama")))
        expect_forwarded(e, "/v1/chat", "g", "/v1/chat", body=llama)
        expect_forwarded(e, "/v1/chat", "v", "/v1/chat", body=mistral)  # llama route does not match
        # both, agreeing
        expect_forwarded(e, "/v1/chat", "g", "/v1/chat", headers=(("Host", "x"), ("X-Model", "llama")), body=llama)
        # both, differing: the header must not pick a route for another model than the engine reads
        err = expect_refused(e, "/v1/chat", 400, "model_conflict", headers=(("Host", "x"), ("X-Model", "llama")),
                             body=mistral)
        assert "llama" in err["message"] and "mistral" in err["message"] and err["param"] == "model", err
        expect_refused(e, "/v1/chat", 400, "model_conflict", headers=(("Host", "x"), ("X-Model", "mistral")),
                       body=llama)
        expect_refused(e, "/v1/chat", 400, "model_conflict",
                       headers=(("Host", "x"), ("X-Model", "llama"), ("X-Model", "mistral")))
        # a route with model_from_header = no refuses the header, takes the body
        strict = (("Host", "strict.example.com"),)
        expect_refused(e, "/v1/chat", 400, "model_header_refused", headers=strict + (("X-Model", "llama"),),
                       body=llama)
        expect_refused(e, "/x", 400, "model_header_refused", headers=strict + (("X-Model", "llama"),))
        expect_forwarded(e, "/x", "g", "/x", headers=strict, body=mistral)
        # a body the scan refuses (the model twice) stays refused with X-Model: the engine reads it
        expect_refused(e, "/v1/chat", 400, "invalid_json", headers=(("Host", "x"), ("X-Model", "llama")),
                       body=b'{"model":"llama","model":"mistral"}')
        expect_refused(e, "/v1/chat", 400, "400", headers=(("Host", "x"), ("X-Model", "l" * 300)))
        # an upload (multipart) is not scanned: the header names its model
        expect_forwarded(e, "/v1/audio", "g", "/v1/audio", headers=(("Host", "x"), ("X-Model", "llama")),
                         body=b"--b\r\n\r\nnot json\r\n--b--\r\n", ctype="multipart/form-data; boundary=b")
    finally:
        e.close()


def main():
    r = Runner()
    cases = [case_paths, case_absolute_form, case_model_header]
    for model in r.models:
        for c in cases:
            r.run(f"{c.__name__[5:]}[{model}]", c, r, model)
    r.finish()


if __name__ == "__main__":
    main()
