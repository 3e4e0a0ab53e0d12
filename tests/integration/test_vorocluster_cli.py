"""vorocluster against a fake cluster API server (docs/cluster-api.md shapes, Python stdlib):
request paths, methods and bodies of every command, the Authorization header, tables, --json
pass-through, exit codes (1 refused, 2 usage, 3 cannot connect), the 421 retry at the leader,
file:line errors of a refused config push, chunked answers and the read timeout."""
import hashlib
import json
import os
import socket
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from voro_harness import Runner, free_port

TOKEN = "s3cret-Token-4242"


class FakeNode:
    """One fake node's cluster API on 127.0.0.1. `leader` (another FakeNode) makes it a follower
    that answers writes with 421 pointing there. Every request is recorded."""

    def __init__(self, node_id=1, name="node1", leader=None, chunked=False):
        self.node_id = node_id
        self.name = name
        self.leader = leader
        self.chunked = chunked
        self.requests = []
        self.lock = threading.Lock()
        self.config_versions = [{"version": 1, "text": "[pool gpu]\nserver = g1 127.0.0.1:9001\n",
                                 "author": "alice", "time_ms": 1764115200000}]
        self.force = None  # (status, body) answered to the next request
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _serve(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                status, body = owner.handle(self.command, self.path, dict(self.headers.items()), raw)
                data = json.dumps(body).encode() if not isinstance(body, bytes) else body
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if owner.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    for i in range(0, len(data), 7):
                        piece = data[i:i + 7]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(data)
                self.close_connection = True

            do_GET = do_POST = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.addr = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def ident(self):
        return {"node": {"id": self.node_id, "name": self.name}, "term": 7}

    def members(self):
        return [
            {"id": 1, "name": "node1", "raft_address": "127.0.0.1:7001", "admin_address": "127.0.0.1:9101",
             "role": "voter", "reachable": True, "active_config_version": 3, "active_config_ok": True,
             "active_config_reason": ""},
            {"id": 2, "name": "node2", "raft_address": "127.0.0.1:7002", "admin_address": "127.0.0.1:9102",
             "role": "voter", "reachable": True, "active_config_version": 3, "active_config_ok": True,
             "active_config_reason": ""},
            {"id": 3, "name": "node3", "raft_address": "127.0.0.1:7003", "admin_address": "127.0.0.1:9103",
             "role": "standby", "reachable": False, "active_config_version": 2, "active_config_ok": False,
             "active_config_reason": "bind 127.0.0.1:8080: address in use"},
        ]

    def handle(self, method, target, headers, raw):
        u = urlparse(target)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = "NOT JSON"
        with self.lock:
            self.requests.append({"method": method, "path": u.path, "query": parse_qs(u.query),
                                  "headers": {k.lower(): v for k, v in headers.items()}, "body": body})
            force, self.force = self.force, None
        if force:
            return force
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, {"error": "unauthorized"}
        r = self.ident()
        if method in ("POST", "DELETE") and self.leader is not None:
            return 421, dict(r, error="not the leader",
                             leader={"id": self.leader.node_id, "admin_address": self.leader.addr})
        p = u.path
        if method == "GET" and p == "/cluster/status":
            return 200, dict(r, state="leader", leader={"id": 1, "name": "node1", "admin_address": "127.0.0.1:9101"},
                             commit_index=42, applied_index=41, members=self.members(), config_version=3,
                             backends={"up": 3, "down": 1, "draining": 0}, vip=None)
        if method == "POST" and p == "/cluster/init":
            return 200, dict(r, cluster="initialised")
        if method == "POST" and p == "/cluster/join-via":
            return 200, dict(r, members=self.members())
        if method == "POST" and p == "/cluster/leave":
            return 200, dict(r, members=self.members()[:2])
        if method == "POST" and p == "/cluster/config":
            text = body["text"]
            if "bogus" in text:
                return 400, dict(r, error="invalid config",
                                 errors=["cluster.conf:2: unknown key 'bogus' in [pool gpu]",
                                         "cluster.conf:4: bad value 'x' for weight"])
            cur = self.config_versions[-1]["version"]
            if body["expected_version"] not in (0, cur):
                return 409, dict(r, error=f"expected version {body['expected_version']}, current is {cur}",
                                 code="stale")
            v = {"version": cur + 1, "text": text, "author": body["author"], "time_ms": 1764118800000}
            self.config_versions.append(v)
            return 200, dict(r, version=v["version"], hash=hashlib.sha256(text.encode()).hexdigest())
        if method == "GET" and p == "/cluster/config":
            want = int(parse_qs(u.query).get("version", ["0"])[0])
            for v in reversed(self.config_versions):
                if want in (0, v["version"]):
                    return 200, dict(r, hash=hashlib.sha256(v["text"].encode()).hexdigest(), **v)
            return 404, dict(r, error=f"no config version {want}", code="not_found")
        if method == "GET" and p == "/cluster/config/history":
            return 200, dict(r, versions=[{"version": v["version"], "author": v["author"], "time_ms": v["time_ms"],
                                           "hash": hashlib.sha256(v["text"].encode()).hexdigest()}
                                          for v in reversed(self.config_versions)])
        if method == "POST" and p == "/cluster/config/rollback":
            src = [v for v in self.config_versions if v["version"] == body["version"]][0]
            v = dict(src, version=self.config_versions[-1]["version"] + 1, author=body["author"])
            self.config_versions.append(v)
            return 200, dict(r, version=v["version"])
        if p == "/cluster/backends" and method in ("POST", "DELETE"):
            return 200, r
        if p == "/cluster/backends/drain" and method == "POST":
            return 200, r
        if p == "/cluster/backends" and method == "GET":
            return 200, dict(r, backends=[{"pool": "gpu", "address": "127.0.0.1:9001", "weight": 2, "draining": False,
                                           "health": "up", "reason": ""}])
        return 404, dict(r, error="not found")

    def last(self):
        with self.lock:
            return self.requests[-1]


def cli(r, *args, token=TOKEN, env_extra=None):
    """Runs vorocluster; returns (rc, stdout, stderr). The token must never appear in the output."""
    binary = os.path.join(r.args.build_dir, "vorocluster")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOROCLUSTER_")}
    env.update(env_extra or {})
    argv = [binary] + list(args)
    if token is not None:
        argv += ["--token", token]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert TOKEN not in p.stdout and TOKEN not in p.stderr, "the token was printed"
    assert "Sanitizer" not in p.stderr and "runtime error:" not in p.stderr, p.stderr
    return p.returncode, p.stdout, p.stderr


def with_node(fn, **kw):
    def case(r):
        n = FakeNode(**kw)
        try:
            fn(r, n)
        finally:
            n.close()
    return case


def case_auth_header_and_env(r, n):
    rc, out, err = cli(r, "--admin", n.addr, "status")
    assert rc == 0, err
    req = n.last()
    assert req["method"] == "GET" and req["path"] == "/cluster/status", req
    assert req["headers"]["authorization"] == f"Bearer {TOKEN}", req
    assert "x-voro-no-forward" not in req["headers"]
    # the same through the environment, no flags
    rc, out, err = cli(r, "status", token=None,
                       env_extra={"VOROCLUSTER_ADMIN": n.addr, "VOROCLUSTER_TOKEN": TOKEN})
    assert rc == 0, err
    assert n.last()["headers"]["authorization"] == f"Bearer {TOKEN}"
    # --admin wins over the environment
    rc, _, err = cli(r, "--admin", n.addr, "status", env_extra={"VOROCLUSTER_ADMIN": "127.0.0.1:1"})
    assert rc == 0, err


def case_status_table(r, n):
    rc, out, err = cli(r, "--admin", n.addr, "status")
    assert rc == 0, err
    lines = out.splitlines()
    assert "answered by node 1 (node1): state leader, term 7, commit 42, applied 41" in out, out
    assert "leader: node 1 (node1) at 127.0.0.1:9101" in out, out
    assert "backends: 3 up, 1 down, 0 draining" in out, out
    assert "vip: -" in out, out
    hdr = [l for l in lines if l.startswith("ID ")]
    assert hdr and all(c in hdr[0] for c in ("NAME", "ROLE", "RAFT", "ADMIN", "REACHABLE", "TERM", "COMMIT",
                                              "APPLIED", "CONFIG", "VIP")), out
    rows = {l.split()[0]: l.split() for l in lines if l[:1].isdigit()}
    assert set(rows) == {"1", "2", "3"}, out
    # node 1 answered: its term/commit/applied are known; the others' are not in the answer
    assert rows["1"][1:7] == ["node1", "voter", "(leader)", "127.0.0.1:7001", "127.0.0.1:9101", "yes"], rows["1"]
    assert rows["1"][7:12] == ["7", "42", "41", "3", "-"], rows["1"]
    assert rows["2"][1:3] == ["node2", "voter"] and rows["2"][5] == "yes", rows["2"]
    assert rows["2"][6:9] == ["-", "-", "-"], rows["2"]
    assert rows["3"][2] == "standby" and rows["3"][5] == "no" and "FAILED" in rows["3"], rows["3"]
    assert "node 3: config version 2 not active: bind 127.0.0.1:8080: address in use" in out, out


def case_json_passthrough(r, n):
    for args in (["status"], ["config", "history"], ["config", "get"], ["init"], ["backend", "list"]):
        rc, out, err = cli(r, "--admin", n.addr, "--json", *args)
        assert rc == 0, (args, err)
        doc = json.loads(out)
        assert doc["node"] == {"id": 1, "name": "node1"}, (args, out)
    # the bytes are the server's, unchanged (json.dumps spacing included)
    rc, out, _ = cli(r, "--admin", n.addr, "status", "--json")
    assert out.rstrip("\n") == json.dumps(n.handle("GET", "/cluster/status", {"Authorization": f"Bearer {TOKEN}"},
                                                   b"")[1]), out
    # on a refusal --json still prints the body, and the reason goes to stderr
    rc, out, err = cli(r, "--admin", n.addr, "--json", "status", token="wrong")
    assert rc == 1 and json.loads(out) == {"error": "unauthorized"} and "unauthorized" in err, (rc, out, err)


def case_unauthorized(r, n):
    for token in ("wrong", None):
        rc, out, err = cli(r, "--admin", n.addr, "status", token=token)
        assert rc == 1, (rc, out, err)
        assert "unauthorized" in err and len(err.strip().splitlines()) == 1, err
        assert out == "", out
    assert "authorization" not in n.last()["headers"], n.last()  # no token: no header
    rc, _, err = cli(r, "--admin", n.addr, "config", "rollback", "1", token="badtoken-zz9")
    assert rc == 1 and "unauthorized" in err and "badtoken-zz9" not in err, err


def case_connection_refused(r):
    port = free_port()
    rc, out, err = cli(r, "--admin", f"127.0.0.1:{port}", "status")
    assert rc == 3, (rc, err)
    assert "cannot connect" in err and "refused" in err.lower() and len(err.strip().splitlines()) == 1, err
    rc, _, err = cli(r, "--admin", f"127.0.0.1:{port}", "config", "push", __file__)
    assert rc == 3, (rc, err)


def case_commands_requests(r, n):
    a = ["--admin", n.addr]

    def check(args, method, path, body, want_out=None):
        rc, out, err = cli(r, *a, *args)
        assert rc == 0, (args, rc, err)
        req = n.last()
        assert (req["method"], req["path"]) == (method, path), (args, req)
        assert req["body"] == body, (args, req["body"])
        if body is not None:
            assert req["headers"]["content-type"] == "application/json", req
        if want_out:
            assert want_out in out, (args, out)
        return out, req

    check(["init"], "POST", "/cluster/init", {}, "initialised a one-node cluster: node 1 (node1), term 7")
    out, _ = check(["join", "--via", "127.0.0.1:9101"], "POST", "/cluster/join-via", {"via": "127.0.0.1:9101"},
                   "joined the cluster via 127.0.0.1:9101")
    assert "node3" in out, out
    # Without an id, vorocluster asks the node who it is and names it (a "{}" retried at the
    # leader would remove the leader).
    out, _ = check(["leave"], "POST", "/cluster/leave", {"id": 1}, "node 1 (node1) left the cluster")
    assert "node3" not in out and "node2" in out, out
    check(["leave", "3"], "POST", "/cluster/leave", {"id": 3}, "node 3 left the cluster")
    check(["backend", "add", "gpu", "127.0.0.1:9005", "--weight", "3"], "POST", "/cluster/backends",
          {"pool": "gpu", "address": "127.0.0.1:9005", "weight": 3}, "added 127.0.0.1:9005 in pool gpu")
    check(["backend", "add", "gpu", "127.0.0.1:9006"], "POST", "/cluster/backends",
          {"pool": "gpu", "address": "127.0.0.1:9006", "weight": 1})
    check(["backend", "remove", "gpu", "127.0.0.1:9005"], "DELETE", "/cluster/backends",
          {"pool": "gpu", "address": "127.0.0.1:9005"}, "removed")
    check(["backend", "drain", "gpu", "127.0.0.1:9006"], "POST", "/cluster/backends/drain",
          {"pool": "gpu", "address": "127.0.0.1:9006"}, "draining")
    out, _ = check(["backend", "list"], "GET", "/cluster/backends", None, "127.0.0.1:9001")
    assert "POOL" in out and "up" in out, out

    text = '[pool gpu]\nserver = g1 127.0.0.1:9001 weight=2\n# "quoted" \\ back\tslash é\n'
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False, encoding="utf-8") as f:
        f.write(text)
    try:
        out, req = check(["config", "push", f.name, "--author", "bob"], "POST", "/cluster/config",
                         {"text": text, "author": "bob", "expected_version": 0}, "as config version 2")
        assert hashlib.sha256(text.encode()).hexdigest()[:12] in out, out
        check(["config", "push", f.name, "--expected-version", "2"], "POST", "/cluster/config",
              {"text": text, "author": os.environ.get("USER") or "vorocluster", "expected_version": 2},
              "as config version 3")
        # a stale expected version: 409 with the server's reason and code
        rc, out, err = cli(r, *a, "config", "push", f.name, "--expected-version", "1")
        assert rc == 1 and "409" in err and "current is 3" in err and "stale" in err, (rc, err)
    finally:
        os.unlink(f.name)

    out, req = check(["config", "get"], "GET", "/cluster/config", None)
    assert out == text and req["query"] == {}, (out, req)
    out, req = check(["config", "get", "--version", "1"], "GET", "/cluster/config", None)
    assert req["query"] == {"version": ["1"]} and out == n.config_versions[0]["text"], (out, req)
    rc, _, err = cli(r, *a, "config", "get", "--version", "99")
    assert rc == 1 and "404" in err and "no config version 99" in err, err
    out, _ = check(["config", "rollback", "1", "--author", "carol"], "POST", "/cluster/config/rollback",
                   {"version": 1, "author": "carol"}, "as config version 4")
    out, _ = check(["config", "history"], "GET", "/cluster/config/history", None)
    rows = [l.split() for l in out.splitlines()[1:]]
    assert [x[0] for x in rows] == ["4", "3", "2", "1"], out
    assert rows[3][1:4] == ["2025-11-26", "00:00:00Z", "alice"], rows[3]
    assert rows[0][3] == "carol", rows[0]


def case_config_push_errors(r, n):
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write("[pool gpu]\nbogus = 1\n")
    try:
        rc, out, err = cli(r, "--admin", n.addr, "config", "push", f.name)
    finally:
        os.unlink(f.name)
    assert rc == 1, (rc, err)
    lines = err.splitlines()
    assert "cluster.conf:2: unknown key 'bogus' in [pool gpu]" in lines, err
    assert "cluster.conf:4: bad value 'x' for weight" in lines, err
    assert any("invalid config" in l and "400" in l for l in lines), err
    assert len(n.config_versions) == 1


def case_not_leader_retry(r):
    leader = FakeNode(1, "node1")
    follower = FakeNode(2, "node2", leader=leader)
    try:
        rc, out, err = cli(r, "--admin", follower.addr, "backend", "add", "gpu", "127.0.0.1:9009")
        assert rc == 0, (rc, err)
        assert follower.last()["path"] == "/cluster/backends" and leader.last()["path"] == "/cluster/backends"
        assert leader.last()["body"] == {"pool": "gpu", "address": "127.0.0.1:9009", "weight": 1}
        assert leader.last()["headers"]["authorization"] == f"Bearer {TOKEN}"
        assert "retrying at " + leader.addr in err, err
        assert "x-voro-no-forward" not in follower.last()["headers"], follower.last()
        assert leader.last()["headers"].get("x-voro-no-forward") == "1", leader.last()
        # a follower that knows the leader but failed to forward (503 naming it): retried there too
        follower.force = (503, {"node": {"id": 2, "name": "node2"}, "term": 7, "error": "forwarding failed",
                                "leader": {"id": 1, "admin_address": leader.addr}})
        rc, out, err = cli(r, "--admin", follower.addr, "leave", "3")
        assert rc == 0 and leader.last()["path"] == "/cluster/leave", (rc, err, leader.last())
        # 503 without a leader: nothing to retry, a one-line refusal
        follower.force = (503, {"node": {"id": 2, "name": "node2"}, "term": 7, "error": "no leader", "leader": None})
        n_leader = len(leader.requests)
        rc, out, err = cli(r, "--admin", follower.addr, "leave", "3")
        assert rc == 1 and "no leader" in err and len(leader.requests) == n_leader, (rc, err)
        # 504 (the write may still commit): never retried
        follower.force = (504, {"node": {"id": 2, "name": "node2"}, "term": 7, "error": "commit timeout"})
        rc, out, err = cli(r, "--admin", follower.addr, "leave", "3")
        assert rc == 1 and "commit timeout" in err and len(leader.requests) == n_leader, (rc, err)
        # only once: a leader that also answers 421 makes the command fail
        leader.leader = follower
        rc, out, err = cli(r, "--admin", follower.addr, "init")
        assert rc == 1 and "421" in err and "not the leader" in err, (rc, err)
        assert len(follower.requests) == 5 and len(leader.requests) == 3, (follower.requests, leader.requests)
        # a leader address nobody listens on: cannot connect
        leader.close()
        rc, out, err = cli(r, "--admin", follower.addr, "init")
        assert rc == 3, (rc, err)
    finally:
        follower.close()
        try:
            leader.close()
        except OSError:
            pass


def case_server_errors(r, n):
    n.force = (503, {"node": {"id": 1, "name": "node1"}, "term": 7, "error": "no leader", "leader": None})
    rc, out, err = cli(r, "--admin", n.addr, "backend", "drain", "gpu", "127.0.0.1:9001")
    assert rc == 1 and "503" in err and "no leader" in err and len(err.strip().splitlines()) == 1, (rc, err)
    n.force = (500, b"oops, not json")
    rc, out, err = cli(r, "--admin", n.addr, "status")
    assert rc == 1 and "500" in err and "oops" in err, (rc, err)
    n.force = (200, b"{not json")
    rc, out, err = cli(r, "--admin", n.addr, "status")
    assert rc == 1 and "not JSON" in err, (rc, err)
    n.force = (400, {"error": "missing field", "field": "pool"})
    rc, out, err = cli(r, "--admin", n.addr, "backend", "add", "gpu", "127.0.0.1:1")
    assert rc == 1 and "missing field" in err and "pool" in err, (rc, err)


def case_chunked_answer(r, n):
    rc, out, err = cli(r, "--admin", n.addr, "status")
    assert rc == 0, err
    assert "node3" in out and "vip: -" in out, out
    rc, out, err = cli(r, "--admin", n.addr, "--json", "config", "history")
    assert rc == 0 and len(json.loads(out)["versions"]) == 1, (out, err)


def case_read_timeout(r):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4)  # accepts (the kernel does) but never answers
    try:
        rc, out, err = cli(r, "--admin", "127.0.0.1:%d" % s.getsockname()[1], "--timeout", "1", "status")
        assert rc == 1 and "no complete answer" in err, (rc, err)
    finally:
        s.close()


def case_usage(r):
    for args in ([], ["bogus"], ["config"], ["config", "nope"], ["status", "extra"], ["join"],
                 ["config", "push"], ["config", "rollback", "x"], ["backend", "add", "gpu"],
                 ["backend", "add", "gpu", "127.0.0.1:1", "--weight", "0"], ["leave", "abc"],
                 ["status", "--via", "1.2.3.4:5"], ["status", "--frobnicate"], ["--admin"],
                 ["--admin", "nocolon", "status"], ["config", "push", "/nonexistent/file.conf"],
                 ["status", f"--tokne={TOKEN}"], ["--admin", "--token", TOKEN, "status"]):
        rc, out, err = cli(r, "--admin", "127.0.0.1:1", *args) if args[:1] != ["--admin"] else cli(r, *args)
        assert rc == 2, (args, rc, out, err)
        assert err.startswith("vorocluster: ") or err.startswith("usage:"), (args, err)
    for args in (["-h"], ["status", "-h"], ["config", "push", "--help"], ["backend", "-h"], ["join", "-h"]):
        rc, out, err = cli(r, *args)
        assert rc == 0 and "vorocluster" in out, (args, rc, out)
    rc, out, _ = cli(r, "config", "push", "-h")
    assert "--expected-version" in out and "file:line" in out, out


def main():
    r = Runner()
    r.run("auth_header_and_env", with_node(case_auth_header_and_env), r)
    r.run("status_table", with_node(case_status_table), r)
    r.run("json_passthrough", with_node(case_json_passthrough), r)
    r.run("unauthorized", with_node(case_unauthorized), r)
    r.run("connection_refused", case_connection_refused, r)
    r.run("commands_requests", with_node(case_commands_requests), r)
    r.run("config_push_errors", with_node(case_config_push_errors), r)
    r.run("not_leader_retry", case_not_leader_retry, r)
    r.run("server_errors", with_node(case_server_errors), r)
    r.run("chunked_answer", with_node(case_chunked_answer, chunked=True), r)
    r.run("read_timeout", case_read_timeout, r)
    r.run("usage", case_usage, r)
    r.finish()


if __name__ == "__main__":
    main()
