"""Cluster scenarios on loopback: a three-node cluster built with init + two concurrent joins,
config pushed through a follower becoming active on every node's data plane, bad input to the
cluster API, a fourth node joining and leaving, and the leader SIGKILLed under a stream of config
pushes (acknowledged pushes survive everywhere; the killed node restarts from its disk and
catches up), and a dynamic backend added, drained and removed through the API reaching every
node's data plane. Every process is killed by PID in finally; every wait is bounded."""
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

from voro_harness import Backend, Runner, Voro, connect, dead_port, free_port, wait_until

TOKEN = "it-cluster-token-5f0c"


class FixedVoro(Voro):
    """A Voro whose admin port is chosen by the test, so a restarted node keeps its address."""

    def __init__(self, binary, config_text, admin_port):
        self._fixed_admin = admin_port
        super().__init__(binary, config_text)

    def write_config(self, text):
        self.admin_port = self._fixed_admin
        super().write_config(text)


def api(port, method, path, body=None, token=TOKEN, headers=None, raw=None, timeout=12):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    try:
        doc = json.loads(text) if text else {}
    except ValueError:
        doc = {"_raw": text.decode(errors="replace")}
    return status, doc


class Node:
    def __init__(self, binary, idx, backend_a):
        self.binary = binary
        self.idx = idx
        self.admin_port = free_port()
        self.raft_port = free_port()
        self.extra_port = free_port()
        self.main_port = free_port()
        self.dir = tempfile.mkdtemp(prefix=f"voro-cluster-n{idx}-")
        self.text = (
            f"[node]\nname = n{idx}\nadmin_address = {{admin}}\ndata_dir = {self.dir}\n"
            f"bind.extra = 127.0.0.1:{self.extra_port}\n"
            f"[cluster]\nnode_id = {idx}\nraft_address = 127.0.0.1:{self.raft_port}\n"
            f"data_dir = {self.dir}/raft\ntoken = {TOKEN}\n"
            "snapshot_threshold = 8\nsnapshot_trailing = 32\n"
            "[server]\nthreads = 1\nio_model = epoll\n"
            f"[listener main]\nbind = 127.0.0.1:{self.main_port}\npool = a\n"
            f"[listener extra]\nbind = 127.0.0.1:{self.extra_port}\npool = a\n"
            f"[pool a]\nserver = a1 {backend_a.addr}\nhealth_check = none\n"
            "[timeouts]\ndrain = 0\n")
        self.v = None
        self.start()

    def start(self):
        self.v = FixedVoro(self.binary, self.text, self.admin_port)

    def api(self, method, path, body=None, **kw):
        return api(self.admin_port, method, path, body, **kw)

    def status(self):
        s, d = self.api("GET", "/cluster/status")
        assert s == 200, (s, d)
        return d

    def alive(self):
        return self.v is not None and self.v.proc.poll() is None

    def kill(self):
        if self.alive():
            self.v.proc.send_signal(signal.SIGKILL)
            self.v.proc.wait(10)

    def close(self):
        """SIGTERM; fails (unless an exception propagates) on an unclean exit or sanitizer output."""
        if self.v is not None:
            v, self.v = self.v, None
            self.last_log = v.log_text(limit=20000)
            v.close()

    def cleanup(self):
        try:
            if self.v is not None:
                if self.v.proc.poll() is None:
                    self.v.proc.kill()
                    self.v.proc.wait(5)
                try:
                    self.v.close()
                except AssertionError:
                    pass  # already failing: the case that left it running reported why
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def ident_via(port):
    """Connects to a listener whose pool holds an 'ident' backend and returns the name it sends."""
    s = connect(port, timeout=5)
    try:
        buf = b""
        while not buf.endswith(b"\n") and len(buf) < 64:
            d = s.recv(64)
            if not d:
                break
            buf += d
        return buf.decode().strip()
    finally:
        s.close()


def port_open(port):
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def leader_of(nodes):
    for n in nodes:
        if not n.alive():
            continue
        try:
            d = n.status()
        except OSError:
            continue
        if d["state"] == "leader":
            return n
    return None


def push_text(ctx, seq, extra_port_placeholder=None):
    return ("[listener extra]\n"
            f"bind = 127.0.0.1:{ctx['placeholder']}\npool = b\n"
            f"[pool b]\nserver = b1 {ctx['b'].addr}\nhealth_check = none\n"
            "[timeouts]\ndrain = 0\n"
            f"# push {seq}\n")


def members_by_id(d):
    return {m["id"]: m for m in d["members"]}


# ---- cases (they share one cluster, built by the first ones) ----

def case_uninitialised_and_auth(r, ctx):
    n1 = ctx["nodes"][0]
    d = n1.status()
    assert d["state"] == "uninitialised" and d["leader"] is None, d
    assert d["node"] == {"id": 1, "name": "n1"} and "term" in d, d
    s, d = n1.api("GET", "/cluster/status", token=None)
    assert s == 401 and d["error"] == "unauthorized", (s, d)
    s, d = n1.api("GET", "/cluster/status", token="wrong-token")
    assert s == 401, (s, d)
    s, d = n1.api("POST", "/cluster/init", {}, token="wrong")
    assert s == 401, (s, d)
    assert n1.status()["state"] == "uninitialised"  # a refused init changed nothing
    s, d = n1.api("POST", "/cluster/config", {"text": push_text(ctx, 0)})
    assert s == 503 and d["leader"] is None, (s, d)
    assert TOKEN not in json.dumps(n1.status())


def case_init_and_concurrent_joins(r, ctx):
    n1, n2, n3 = ctx["nodes"]
    s, d = n1.api("POST", "/cluster/init", {})
    assert s == 200 and d["cluster"] == "initialised", (s, d)
    s, d = n1.api("POST", "/cluster/init", {})
    assert s == 409, (s, d)
    results = {}

    def join(n):
        results[n.idx] = n.api("POST", "/cluster/join-via", {"via": f"127.0.0.1:{n1.admin_port}"}, timeout=20)

    threads = [threading.Thread(target=join, args=(n,)) for n in (n2, n3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for idx in (2, 3):
        s, d = results[idx]
        assert s == 200 and d.get("joined") is True, (idx, s, d)

    def all_see_three():
        for n in (n1, n2, n3):
            d = n.status()
            ms = members_by_id(d)
            if sorted(ms) != [1, 2, 3] or any(m["role"] != "voter" for m in ms.values()) or d["leader"] is None:
                return False
        return True

    wait_until(all_see_three, timeout=10, what="three voters seen by every node")
    # Whichever node leads (the bootstrapping one usually, but an election may move it), every
    # node names the same one once they agree.
    def agree_on_leader():
        leader = leader_of(ctx["nodes"])
        return leader is not None and all(n.status()["leader"]["id"] == leader.idx for n in (n1, n2, n3)) and leader
    leader = wait_until(agree_on_leader, timeout=10, what="every node names the same leader")
    for n in (n1, n2, n3):
        d = n.status()
        assert d["node"]["id"] == n.idx and d["term"] >= 1, d
        assert d["leader"]["id"] == leader.idx, d
        assert d["leader"]["admin_address"] == f"127.0.0.1:{leader.admin_port}", d
    # a second join of a member changes nothing
    s, d = n2.api("POST", "/cluster/join-via", {"via": f"127.0.0.1:{n1.admin_port}"})
    assert s == 409, (s, d)


def case_push_via_follower_active_everywhere(r, ctx):
    nodes = ctx["nodes"]
    for n in nodes:  # before: the local file's extra listener goes to pool a
        assert ident_via(n.extra_port) == "A", n.idx
    follower = next(n for n in nodes if n.status()["state"] == "follower")
    leader_id = follower.status()["leader"]["id"]
    assert leader_id != follower.idx
    s, d = follower.api("POST", "/cluster/config", {"text": push_text(ctx, 1), "author": "it", "expected_version": 0})
    assert s == 200 and d["version"] >= 1 and len(d["hash"]) == 64, (s, d)
    assert d["node"]["id"] == leader_id, "a follower forwards writes to the leader, whose answer comes back"
    version = d["version"]
    ctx["acked"] = {version: d["hash"]}
    # a client that goes away while its forwarded write is pending: the node stays sound and the
    # write still commits
    text2 = push_text(ctx, 2)
    body = json.dumps({"text": text2, "author": "gone"}).encode()
    with socket.create_connection(("127.0.0.1", follower.admin_port), timeout=5) as s:
        s.sendall(f"POST /cluster/config HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    wait_until(lambda: all(n.status()["config_version"] == version + 1 for n in nodes), timeout=10,
               what="the abandoned push committed")
    version += 1
    ctx["acked"][version] = hashlib.sha256(text2.encode()).hexdigest()
    s_, d = follower.api("GET", "/cluster/config")
    assert d["hash"] == ctx["acked"][version] and d["author"] == "gone", d

    def active_everywhere():
        for n in nodes:
            ms = members_by_id(n.status())
            if any(m["active_config_version"] != version or not m["active_config_ok"] for m in ms.values()):
                return False
        return True

    wait_until(active_everywhere, timeout=10, what=f"config {version} active on every node")
    for n in nodes:  # the data plane really switched: the same port now reaches pool b
        wait_until(lambda: ident_via(n.extra_port) == "B", timeout=5, what=f"n{n.idx} extra -> pool b")
        # listener main was not in the pushed config
        wait_until(lambda: not port_open(n.main_port), timeout=5, what=f"n{n.idx} listener main closed")
        s_, d = n.api("GET", "/cluster/config")
        assert s_ == 200 and d["version"] == version and d["text"] == text2, d
    ctx["version"] = version


def case_bad_input_changes_nothing(r, ctx):
    nodes = ctx["nodes"]
    n1, n2 = nodes[0], nodes[1]
    before = n1.status()["config_version"]
    for n in (n1, n2):
        s, d = n.api("POST", "/cluster/config", raw=b"{not json")
        assert s == 400, (s, d)
        s, d = n.api("POST", "/cluster/config", {"author": "x"})
        assert s == 400 and d["field"] == "text", (s, d)
        s, d = n.api("POST", "/cluster/config", {"text": 42})
        assert s == 400 and d["field"] == "text", (s, d)
        s, d = n.api("POST", "/cluster/config", {"text": push_text(ctx, 9)}, token=None)
        assert s == 401, (s, d)
        s, d = n.api("POST", "/cluster/config", {"text": push_text(ctx, 9)}, token=TOKEN + "x")
        assert s == 401, (s, d)
    # malformed: the parser's file:line message
    bad = "[listener extra]\nbind = 127.0.0.1:notaport\npool = b\n[pool b]\nserver = b1 127.0.0.1:1\n"
    s, d = n2.api("POST", "/cluster/config", {"text": bad})
    assert s == 400 and d["error"] == "invalid config", (s, d)
    assert any(e.startswith("push:2: ") and "notaport" in e for e in d["errors"]), d
    # node-scoped keys are refused with key and line
    s, d = n1.api("POST", "/cluster/config", {"text": "[server]\nthreads = 4\n" + push_text(ctx, 9)})
    assert s == 400 and any(e.startswith("push:2: ") and "threads" in e and "node-scoped" in e
                            for e in d["errors"]), (s, d)
    s, d = n1.api("POST", "/cluster/config", {"text": push_text(ctx, 9) + "[cluster]\ntoken = x\n"})
    assert s == 400 and any("token" in e for e in d["errors"]), (s, d)
    # stale expected_version
    s, d = n2.api("POST", "/cluster/config", {"text": push_text(ctx, 9), "expected_version": before + 5})
    assert s == 409 and d["code"] == "stale", (s, d)
    # unknown node, unknown version
    s, d = n1.api("POST", "/cluster/leave", {"id": 77})
    assert s == 404 and d.get("code") == "not_found", (s, d)
    s, d = n1.api("POST", "/cluster/leave", {"id": "two"})
    assert s == 400 and d["field"] == "id", (s, d)
    s, d = n1.api("POST", "/cluster/config/rollback", {"version": 999})
    assert s == 409 and d["code"] == "not_found", (s, d)
    s, d = n1.api("GET", "/cluster/config?version=999")
    assert s == 404, (s, d)
    s, d = n1.api("POST", "/cluster/join", {"id": 9, "name": "x", "raft_address": "nowhere", "admin_address": "1.2.3.4:5"})
    assert s == 400 and d["field"] == "raft_address", (s, d)
    # a follower asked not to forward names the leader
    follower = next(n for n in nodes if n.status()["state"] == "follower")
    leader_id = follower.status()["leader"]["id"]
    s, d = follower.api("POST", "/cluster/config", {"text": push_text(ctx, 9)}, headers={"X-Voro-No-Forward": "1"})
    assert s == 421 and d["leader"]["id"] == leader_id != follower.idx, (s, d)
    for n in nodes:
        d = n.status()
        assert d["config_version"] == before, d
        assert sorted(members_by_id(d)) == [1, 2, 3], d
        assert TOKEN not in json.dumps(d)


def case_join_fourth_then_leader_leaves(r, ctx):
    nodes = ctx["nodes"]
    n4 = Node(r.args.voro, 4, ctx["a"])
    ctx["extra_nodes"].append(n4)
    via = next(n for n in nodes if n.status()["state"] == "follower")  # the join is forwarded to the leader
    s, d = n4.api("POST", "/cluster/join-via", {"via": f"127.0.0.1:{via.admin_port}"}, timeout=20)
    assert s == 200, (s, d)
    wait_until(lambda: sorted(members_by_id(nodes[0].status())) == [1, 2, 3, 4], timeout=10, what="4 members")
    # the new node caught up: it runs the current config on its data plane
    wait_until(lambda: n4.status()["active_config_version"] == ctx["version"], timeout=10, what="n4 active config")
    wait_until(lambda: ident_via(n4.extra_port) == "B", timeout=5, what="n4 extra -> pool b")
    # a follower leaves through itself (no id = the answering node, which forwards its own id)
    n5 = Node(r.args.voro, 5, ctx["a"])
    ctx["extra_nodes"].append(n5)
    s, d = n5.api("POST", "/cluster/join-via", {"via": f"127.0.0.1:{nodes[0].admin_port}"}, timeout=20)
    assert s == 200, (s, d)
    s, d = n5.api("POST", "/cluster/leave", {}, timeout=20)
    assert s == 200 and sorted(m["id"] for m in d["members"]) == [1, 2, 3, 4], (s, d)
    n5.close()
    # the leader leaves (no id = the answering node): it hands leadership over first
    old = leader_of(nodes)
    assert old is not None
    s, d = old.api("POST", "/cluster/leave", {}, timeout=20)
    remaining = [n for n in nodes + [n4] if n is not old]
    ids = sorted(n.idx for n in remaining)
    assert s == 200 and sorted(m["id"] for m in d["members"]) == ids, (s, d)
    assert d["node"]["id"] != old.idx, "the new leader removed the old one"
    for n in remaining:
        wait_until(lambda: sorted(members_by_id(n.status())) == ids and n.status()["leader"] is not None
                   and n.status()["leader"]["id"] != old.idx, timeout=10, what=f"n{n.idx}: {ids}")
    ctx["nodes"] = remaining
    ctx["extra_nodes"].append(old)
    old.close()  # a node that left still stops cleanly


def case_kill_leader_under_pushes(r, ctx):
    nodes = ctx["nodes"]
    leader = leader_of(nodes)
    assert leader is not None
    acked = ctx["acked"]
    rng = random.Random(7)
    seq = [100]

    def push_once(deadline):
        """One push, retried on other nodes until acknowledged or the deadline."""
        seq[0] += 1
        text = push_text(ctx, seq[0])
        while time.monotonic() < deadline:
            n = rng.choice([x for x in nodes if x.alive()])
            try:
                s, d = n.api("POST", "/cluster/config", {"text": text, "author": "stream"}, timeout=8)
            except OSError:
                s, d = None, None
            if s == 200:
                acked[d["version"]] = d["hash"]
                return time.monotonic()
            time.sleep(0.05)
        views = []
        for x in nodes:
            try:
                views.append(x.status() if x.alive() else f"n{x.idx} dead")
            except OSError as e:
                views.append(f"n{x.idx}: {e}")
        raise AssertionError(f"push {seq[0]} not acknowledged in time; nodes: {views}")

    for _ in range(5):
        push_once(time.monotonic() + 10)
    killed_at = time.monotonic()
    leader.kill()
    for _ in range(8):
        push_once(time.monotonic() + 10)  # bounded: a new leader must take over
    survivors = [n for n in nodes if n is not leader]
    new_leader = leader_of(survivors)
    assert new_leader is not None and new_leader is not leader
    assert time.monotonic() - killed_at < 60

    def has_all(n):
        s, d = n.api("GET", "/cluster/config/history")
        assert s == 200, (s, d)
        got = {v["version"]: v["hash"] for v in d["versions"]}
        return all(got.get(v) == h for v, h in acked.items())

    for n in survivors:
        wait_until(lambda: has_all(n), timeout=10, what=f"n{n.idx} holds every acknowledged push")
    leader.close()  # it was SIGKILLed: nothing to check but the log
    leader.start()  # same config, same data directory, same addresses
    wait_until(lambda: has_all(leader), timeout=15, what="restarted node caught up")
    current = max(acked)
    for n in nodes:
        wait_until(lambda: n.status()["config_version"] == current, timeout=10, what=f"n{n.idx} current")
        wait_until(lambda: all(m["active_config_version"] == current for m in n.status()["members"]),
                   timeout=10, what="every node active on the last push")
        assert ident_via(n.extra_port) == "B"


def case_failed_activation_keeps_old_config(r, ctx):
    nodes = ctx["nodes"]
    # valid alone, but every node's local file overrides listener "extra", which this text drops
    text = (f"[listener other]\nbind = 127.0.0.1:{ctx['placeholder']}\npool = b\n"
            f"[pool b]\nserver = b1 {ctx['b'].addr}\nhealth_check = none\n[timeouts]\ndrain = 0\n")
    s, d = nodes[1].api("POST", "/cluster/config", {"text": text, "author": "it"})
    assert s == 200, (s, d)
    version = d["version"]

    def reported_failure():
        ms = nodes[0].status()["members"]
        return all(m["active_config_version"] == version and not m["active_config_ok"]
                   and "extra" in m["active_config_reason"] for m in ms)

    wait_until(reported_failure, timeout=10, what="every node reports it could not activate")
    for n in nodes:  # the previous config stays in force
        assert ident_via(n.extra_port) == "B", n.idx
    s, d = nodes[2].api("POST", "/cluster/config/rollback", {"version": version - 1, "author": "it"})
    assert s == 200 and d["version"] == version + 1, (s, d)
    wait_until(lambda: all(m["active_config_version"] == version + 1 and m["active_config_ok"]
                           for m in nodes[0].status()["members"]), timeout=10, what="rollback active everywhere")


def case_sighup_member_reloads_node_keys(r, ctx):
    n = ctx["nodes"][0]
    new_port = free_port()
    n.text = n.text.replace(f"bind.extra = 127.0.0.1:{n.extra_port}", f"bind.extra = 127.0.0.1:{new_port}")
    n.v.write_config(n.text)
    assert not port_open(new_port)
    n.v.signal(signal.SIGHUP)
    # the node-scoped override moved the listener; the cluster's pool b is still the one in force
    wait_until(lambda: ident_via(new_port) == "B", timeout=10, what="extra listener on its new port")
    old_port, n.extra_port = n.extra_port, new_port
    wait_until(lambda: not port_open(old_port), timeout=5, what="old extra port closed")
    assert n.status()["config_version"] == n.status()["active_config_version"]


def pool_servers(n, pool):
    """The servers of `pool` in the node's data plane (GET /stats): {address: server}."""
    for p in n.v.stats()["pools"]:
        if p["name"] == pool:
            return {srv["address"]: srv for srv in p["servers"]}
    raise AssertionError(f"n{n.idx}: no pool {pool} in /stats")


def case_dynamic_backends_reach_data_plane(r, ctx):
    nodes, c = ctx["nodes"], ctx["c"]
    text = (f"[listener extra]\nbind = 127.0.0.1:{ctx['placeholder']}\npool = b\n"
            f"[pool b]\nserver = b1 {ctx['b'].addr}\nhealth_check = tcp\nhealth_interval = 100ms\n"
            "health_rise = 1\nhealth_fall = 1\n[timeouts]\ndrain = 0\n")
    s, d = nodes[0].api("POST", "/cluster/config", {"text": text, "author": "it"})
    assert s == 200, (s, d)
    version = d["version"]
    wait_until(lambda: all(m["active_config_version"] == version and m["active_config_ok"]
                           for m in nodes[0].status()["members"]), timeout=10, what=f"config {version} active")
    for n in nodes:
        wait_until(lambda: set(pool_servers(n, "b")) == {ctx["b"].addr}, timeout=5, what=f"n{n.idx} pool b")
        # status counts every server in force, configured ones too (not only dynamic backends)
        wait_until(lambda: n.status()["backends"] == {"up": 1, "down": 0, "draining": 0}, timeout=5,
                   what=f"n{n.idx} status counts the configured server")
    follower = next(n for n in nodes if n.status()["state"] == "follower")
    ref = {"pool": "b", "address": c.addr}

    s, d = follower.api("POST", "/cluster/backends", dict(ref, weight=1))
    assert s == 200, (s, d)
    for n in nodes:  # round robin over b1 and the new server: a few connections reach both
        wait_until(lambda: ident_via(n.extra_port) == "C", timeout=10, what=f"n{n.idx} reaches the added backend")
        assert pool_servers(n, "b")[c.addr]["weight"] == 1, n.idx
        s, d = n.api("GET", "/cluster/backends")
        assert s == 200 and [(b["pool"], b["address"], b["draining"]) for b in d["backends"]] == \
            [("b", c.addr, False)], (s, d)
        wait_until(lambda: n.status()["backends"] == {"up": 2, "down": 0, "draining": 0}, timeout=5,
                   what=f"n{n.idx} status counts b1 and the added backend")
    held = None  # a connection to the new backend, open across the drain
    for _ in range(8):
        sock = connect(nodes[0].extra_port, timeout=5)
        if sock.recv(2) == b"C\n":
            held = sock
            break
        sock.close()
    assert held is not None, "no connection reached C in 8 tries"
    try:
        s, d = nodes[2].api("POST", "/cluster/backends/drain", ref)
        assert s == 200, (s, d)
        for n in nodes:
            wait_until(lambda: pool_servers(n, "b")[c.addr]["weight"] == 0, timeout=10, what=f"n{n.idx} drained")
            assert n.status()["backends"] == {"up": 1, "down": 0, "draining": 1}, (n.idx, n.status()["backends"])
        for n in nodes:  # weight 0: no new connection is sent there (health checks still are)
            before = pool_servers(n, "b")[c.addr]["connections"]
            got = [ident_via(n.extra_port) for _ in range(6)]
            assert got == ["B"] * 6, (n.idx, got)
            assert pool_servers(n, "b")[c.addr]["connections"] == before, n.idx
        held.sendall(b"still here\n")  # the open connection was kept (ident echoes after its name)
        buf = b""
        while len(buf) < 11:
            chunk = held.recv(64)
            assert chunk, "the connection to the drained backend was closed"
            buf += chunk
        assert buf == b"still here\n", buf
    finally:
        held.close()

    s, d = nodes[1].api("DELETE", "/cluster/backends", ref)
    assert s == 200, (s, d)
    for n in nodes:
        wait_until(lambda: c.addr not in pool_servers(n, "b"), timeout=10, what=f"n{n.idx} backend removed")
        assert ident_via(n.extra_port) == "B"
        st = n.status()
        assert st["config_version"] == version, st  # backend changes are not config versions
    assert all(m["active_config_version"] == version and m["active_config_ok"]
               for m in nodes[0].status()["members"]), nodes[0].status()["members"]
    s, d = nodes[0].api("GET", "/cluster/backends")
    assert s == 200 and d["backends"] == [], d

    # health in GET /cluster/backends is each node's own data-plane verdict
    dead = f"127.0.0.1:{dead_port()}"
    s, d = nodes[0].api("POST", "/cluster/backends", {"pool": "b", "address": dead})
    assert s == 200, (s, d)

    def seen_down(n):
        s_, d_ = n.api("GET", "/cluster/backends")
        return [(b["address"], b["health"]) for b in d_["backends"]] == [(dead, "down")] and d_["backends"][0]["reason"]

    for n in nodes:
        wait_until(lambda: seen_down(n), timeout=10, what=f"n{n.idx} sees the dead backend down")
        assert n.status()["backends"] == {"up": 1, "down": 1, "draining": 0}, (n.idx, n.status()["backends"])
    # vorocluster status prints the same counts: the configured b1 and the dead dynamic backend
    vc = os.path.join(r.args.build_dir, "vorocluster")
    p = subprocess.run([vc, "--admin", f"127.0.0.1:{nodes[0].admin_port}", "status"], capture_output=True, text=True,
                       timeout=30, env=dict(os.environ, VOROCLUSTER_TOKEN=TOKEN))
    assert p.returncode == 0 and "backends: 1 up, 1 down, 0 draining" in p.stdout, (p.returncode, p.stdout, p.stderr)
    s, d = nodes[0].api("DELETE", "/cluster/backends", {"pool": "b", "address": dead})
    assert s == 200, (s, d)
    for n in nodes:
        wait_until(lambda: dead not in pool_servers(n, "b"), timeout=10, what=f"n{n.idx} dead backend removed")


def case_majority_loss_recovery(r, ctx):
    """Two of three nodes die for good: the survivor is stopped, `voro --recover-raft` makes it
    the only voter, and restarted it leads alone and takes config pushes again, with the state
    it had (the pushed config history) intact."""
    import subprocess
    nodes = [n for n in ctx["nodes"] if n.alive()]
    assert len(nodes) >= 3, "needs the three-node cluster"
    keep, lost = nodes[0], nodes[1:]
    s, d = keep.api("GET", "/cluster/config/history")
    assert s == 200
    versions_before = {v["version"] for v in d["versions"]}
    for n in lost:
        n.kill()
    # Without a majority nothing commits.
    s, d = keep.api("POST", "/cluster/config", {"text": push_text(ctx, 900), "author": "t"}, timeout=8)
    # Which answer depends on the role `keep` holds, not on chance: a follower (or a leader that
    # stepped down) has no leader to forward to (503), a leader still in office cannot commit (504).
    assert (s, d.get("error")) in ((503, "no leader"), (504, "commit timeout")) \
        or (s == 503 and d.get("code") == "retry"), (s, d)
    keep.close()
    conf = os.path.join(keep.dir, "recover.conf")
    with open(conf, "w") as f:
        f.write(keep.text.replace("{admin}", f"127.0.0.1:{keep.admin_port}"))
    p = subprocess.run([r.args.voro, "-c", conf, "--recover-raft"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    assert "only voter" in p.stdout, p.stdout
    keep.start()
    wait_until(lambda: keep.status()["state"] == "leader", timeout=10, what="the recovered node leads alone")
    s, d = keep.api("GET", "/cluster/config/history")
    assert s == 200 and versions_before <= {v["version"] for v in d["versions"]}, d
    s, d = keep.api("POST", "/cluster/config", {"text": push_text(ctx, 901), "author": "t"})
    assert s == 200, (s, d)
    # Not a member: refused with a clear message, nothing touched.
    plain = os.path.join(keep.dir, "plain.conf")
    with open(plain, "w") as f:
        f.write("[server]\nport = 8080\n[backend]\nb = 127.0.0.1:9\n")
    p = subprocess.run([r.args.voro, "-c", plain, "--recover-raft"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "not a cluster member" in p.stderr, (p.returncode, p.stderr)


def case_clean_shutdown(r, ctx):
    for n in ctx["nodes"]:
        n.close()  # SIGTERM with Raft running: exit 0, no sanitizer report (nodes killed on purpose are just reaped)


def main():
    r = Runner()
    ctx = {"a": Backend("A", mode="ident"), "b": Backend("B", mode="ident"), "c": Backend("C", mode="ident"),
           "placeholder": free_port(),
           "extra_nodes": [], "nodes": []}
    try:
        ctx["nodes"] = [Node(r.args.voro, i, ctx["a"]) for i in (1, 2, 3)]
        for c in (case_uninitialised_and_auth, case_init_and_concurrent_joins, case_push_via_follower_active_everywhere,
                  case_bad_input_changes_nothing, case_join_fourth_then_leader_leaves, case_kill_leader_under_pushes,
                  case_failed_activation_keeps_old_config, case_sighup_member_reloads_node_keys,
                  case_dynamic_backends_reach_data_plane, case_majority_loss_recovery, case_clean_shutdown):
            r.run(c.__name__[5:], c, r, ctx)
    finally:
        if r.failed:
            for n in ctx["nodes"] + ctx["extra_nodes"]:
                text = n.v.log_text(limit=8000) if n.v is not None else getattr(n, "last_log", "")[-8000:]
                print(f"---- n{n.idx} log ----\n" + text, flush=True)
        for n in ctx["nodes"] + ctx["extra_nodes"]:
            n.cleanup()
        ctx["a"].close()
        ctx["b"].close()
        ctx["c"].close()
    r.finish()


if __name__ == "__main__":
    main()
