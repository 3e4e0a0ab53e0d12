"""vorocluster, every command, against a real three-node cluster of voro processes on loopback:
status before and after, init (and a refused second init), join (via the first node and via a
follower), config push (with --author, --expected-version, refused stale and invalid pushes),
config get (current and --version), config history, config rollback, backend add / list / drain /
remove (checked in every node's data plane), leave of the leader by id through another node and
leave of a node by itself, and exit code 3 when nothing answers. The leader is never assumed:
it is read from status. Every process is stopped by PID; every wait is bounded."""
import json
import os
import re
import shutil
import subprocess
import tempfile

from voro_harness import Backend, Runner, Voro, connect, dead_port, free_port, wait_until

TOKEN = "it-vorocluster-token-93b1"


class FixedVoro(Voro):
    """A Voro whose admin port is chosen by the test (the node's files name it)."""

    def __init__(self, binary, config_text, admin_port, io_model):
        self._fixed_admin = admin_port
        super().__init__(binary, config_text, io_model=io_model)

    def write_config(self, text):
        self.admin_port = self._fixed_admin
        super().write_config(text)


class Node:
    def __init__(self, binary, idx, io_model, local_backend):
        self.idx = idx
        self.admin_port = free_port()
        self.web_port = free_port()  # this node's address for the cluster's listener 'web'
        self.dir = tempfile.mkdtemp(prefix=f"voro-vc-n{idx}-")
        text = (f"[node]\nname = n{idx}\nadmin_address = {{admin}}\ndata_dir = {self.dir}\n"
                f"bind.web = 127.0.0.1:{self.web_port}\n"
                f"[cluster]\nnode_id = {idx}\nraft_address = 127.0.0.1:{free_port()}\n"
                f"data_dir = {self.dir}/raft\ntoken = {TOKEN}\n"
                "[server]\nthreads = 1\n"
                f"[listener web]\nbind = 127.0.0.1:{self.web_port}\npool = local\n"
                f"[pool local]\nserver = l1 {local_backend.addr}\nhealth_check = none\n"
                "[timeouts]\ndrain = 0\n")
        self.v = None
        try:
            self.v = FixedVoro(binary, text, self.admin_port, io_model)
        except Exception:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    @property
    def admin(self):
        return f"127.0.0.1:{self.admin_port}"

    def close(self):
        try:
            if self.v is not None:
                v, self.v = self.v, None
                v.close()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class Cli:
    def __init__(self, build_dir):
        self.binary = os.path.join(build_dir, "vorocluster")
        self.env = dict(os.environ, VOROCLUSTER_TOKEN=TOKEN, USER="it-user")
        self.env.pop("VOROCLUSTER_ADMIN", None)

    def __call__(self, node_or_admin, *args, expect=0):
        """Runs vorocluster against one node; checks the exit code; returns (stdout, stderr)."""
        admin = node_or_admin if isinstance(node_or_admin, str) else node_or_admin.admin
        p = subprocess.run([self.binary, "--admin", admin, *args], env=self.env, capture_output=True, text=True,
                           timeout=40)
        assert TOKEN not in p.stdout and TOKEN not in p.stderr, "the token was printed"
        assert p.returncode == expect, (args, p.returncode, p.stdout, p.stderr)
        return p.stdout, p.stderr

    def status(self, node):
        out, _ = self(node, "status", "--json")
        return json.loads(out)


def ident_via(port):
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


def pool_servers(node, pool):
    for p in node.v.stats()["pools"]:
        if p["name"] == pool:
            return {s["name"]: s for s in p["servers"]}
    return {}


def cluster_text(backend, seq):
    return ("[listener web]\nmode = tcp\nbind = 127.0.0.1:1\npool = gpu\n"
            f"[pool gpu]\nserver = g1 {backend.addr}\nhealth_check = none\n"
            f"[timeouts]\ndrain = 0\n# cluster text {seq}\n")


def case_every_command(r, model):
    cli = Cli(r.args.build_dir)
    backends = {n: Backend(n, mode="ident") for n in ("L", "A", "B", "D")}
    nodes = []
    tmp = tempfile.mkdtemp(prefix="voro-vc-files-")
    try:
        nodes = [Node(r.args.voro, i, model, backends["L"]) for i in (1, 2, 3)]
        n1, n2, n3 = nodes
        by_id = {n.idx: n for n in nodes}

        for n in nodes:  # before any push, each node runs its local file: web -> pool local -> L
            assert ident_via(n.web_port) == "L"
        # Nothing answers: exit 3.
        cli(f"127.0.0.1:{dead_port()}", "status", expect=3)
        # status on a fresh node, init, and a second init refused.
        out, _ = cli(n1, "status")
        assert "state uninitialised" in out and "leader: none known" in out and "not in a cluster yet" in out, out
        out, _ = cli(n1, "init")
        assert out.startswith("initialised a one-node cluster: node 1 (n1), term "), out
        _, err = cli(n1, "init", expect=1)
        assert err.startswith("vorocluster: ") and "409" in err, err
        # join: n2 through n1, n3 through n2 (a follower forwards it to the leader).
        out, _ = cli(n2, "join", "--via", n1.admin)
        assert out.startswith(f"node 2 (n2) joined the cluster via {n1.admin}"), out
        out, _ = cli(n3, "join", "--via", n2.admin)
        assert out.startswith(f"node 3 (n3) joined the cluster via {n2.admin}"), out
        _, err = cli(n3, "join", "--via", n1.admin, expect=1)  # already a member

        def agreed_leader(members):
            """The leader every live node in `members` names, once they all see `members` as voters."""
            leaders = set()
            for n in members:
                d = cli.status(n)
                ms = {m["id"]: m for m in d["members"]}
                if sorted(ms) != sorted(m.idx for m in members) or any(m["role"] != "voter" for m in ms.values()):
                    return None
                if d["leader"] is None:
                    return None
                leaders.add(d["leader"]["id"])
            return leaders.pop() if len(leaders) == 1 else None

        leader_id = wait_until(lambda: agreed_leader(nodes), timeout=15, what="three voters and one leader")
        leader = by_id[leader_id]
        followers = [n for n in nodes if n is not leader]
        for n in nodes:
            out, _ = cli(n, "status")
            assert out.startswith(f"answered by node {n.idx} (n{n.idx}): state "), out
            assert f"leader: node {leader_id} (n{leader_id}) at {leader.admin}" in out, out
            rows = [l for l in out.splitlines() if re.match(r"^[123] +n[123] ", l)]
            assert len(rows) == 3, out
            assert [l for l in rows if "voter (leader)" in l][0].startswith(f"{leader_id} "), out
            assert sum("voter" in l for l in rows) == 3, out

        # config push / get / history / rollback, sent to followers (forwarded to the leader).
        f1, f2, bad = (os.path.join(tmp, n) for n in ("c1.conf", "c2.conf", "bad.conf"))
        text1, text2 = cluster_text(backends["A"], 1), cluster_text(backends["B"], 2)
        with open(f1, "w") as f:
            f.write(text1)
        with open(f2, "w") as f:
            f.write(text2)
        with open(bad, "w") as f:
            f.write("[server]\nthreads = 4\n" + text2)
        out, _ = cli(followers[0], "config", "push", f1, "--author", "alice", "--expected-version", "0")
        m = re.match(rf"pushed {re.escape(f1)} as config version (\d+) \(sha256 [0-9a-f]{{12}}\)$", out.strip())
        assert m, out
        v1 = int(m.group(1))
        _, err = cli(followers[1], "config", "push", f2, "--expected-version", str(v1 + 5), expect=1)
        assert "409" in err and "stale" in err, err
        _, err = cli(followers[1], "config", "push", bad, expect=1)
        assert ":2: " in err and "threads" in err and "node-scoped" in err, err
        out, _ = cli(leader, "config", "push", f2, "--author", "bob", "--expected-version", str(v1))
        assert f"as config version {v1 + 1} " in out, out
        v2 = v1 + 1
        for n in nodes:
            assert cli(n, "config", "get")[0] == text2
            assert cli(n, "config", "get", "--version", str(v1))[0] == text1
        cli(n1, "config", "get", "--version", str(v2 + 10), expect=1)
        out, _ = cli(followers[1], "config", "history")
        rows = [l.split() for l in out.splitlines()[1:] if l.strip()]
        assert [(int(x[0]), x[3]) for x in rows[:2]] == [(v2, "bob"), (v1, "alice")], out
        out, _ = cli(followers[0], "config", "rollback", str(v1), "--author", "carol")
        assert out.strip() == f"rolled back to the text of version {v1} as config version {v2 + 1}", out
        v3 = v2 + 1
        assert cli(followers[1], "config", "get")[0] == text1
        out, _ = cli(n1, "config", "history")
        top = out.splitlines()[1].split()
        assert int(top[0]) == v3 and top[3] == "carol", out

        def active(version):
            for n in nodes:
                for m in cli.status(n)["members"]:
                    if m["active_config_version"] != version or not m["active_config_ok"]:
                        return False
            return True
        wait_until(lambda: active(v3), timeout=15, what=f"config {v3} active on every node")
        for n in nodes:  # the data plane runs the rolled-back text: listener web -> pool gpu -> A
            wait_until(lambda: ident_via(n.web_port) == "A", timeout=5, what=f"n{n.idx} web -> A")
            out, _ = cli(n, "status")
            assert f"cluster config version: {v3}" in out, out

        # backend add / list / drain / remove, each seen in every node's data plane.
        d_addr = backends["D"].addr
        dyn = f"dyn-{d_addr.replace(':', '-')}"
        out, _ = cli(followers[1], "backend", "add", "gpu", d_addr, "--weight", "2")
        assert out.strip() == f"added {d_addr} in pool gpu", out

        def listed(n):
            out, _ = cli(n, "backend", "list")
            return [l.split() for l in out.splitlines()[1:] if d_addr in l]

        for n in nodes:
            wait_until(lambda: listed(n) and listed(n)[0][:3] == ["gpu", d_addr, "2"], timeout=10,
                       what=f"n{n.idx} lists the backend")
            wait_until(lambda: pool_servers(n, "gpu").get(dyn, {}).get("weight") == 2, timeout=10,
                       what=f"n{n.idx} data plane has {dyn}")
        seen = {ident_via(followers[0].web_port) for _ in range(9)}
        assert seen == {"A", "D"}, seen
        out, _ = cli(n2, "backend", "drain", "gpu", d_addr)
        assert out.strip() == f"draining {d_addr} in pool gpu", out
        for n in nodes:
            wait_until(lambda: "draining" in " ".join(listed(n)[0]), timeout=10, what=f"n{n.idx} lists it draining")
            wait_until(lambda: pool_servers(n, "gpu").get(dyn, {}).get("weight") == 0, timeout=10,
                       what=f"n{n.idx} data plane drains {dyn}")
        assert {ident_via(leader.web_port) for _ in range(6)} == {"A"}
        out, _ = cli(n3, "backend", "remove", "gpu", d_addr)
        assert out.strip() == f"removed {d_addr} in pool gpu", out
        for n in nodes:
            wait_until(lambda: not listed(n), timeout=10, what=f"n{n.idx} no longer lists it")
            wait_until(lambda: dyn not in pool_servers(n, "gpu"), timeout=10, what=f"n{n.idx} data plane without {dyn}")
        cli(n1, "backend", "remove", "gpu", d_addr, expect=1)  # not there any more
        assert cli.status(n1)["config_version"] == v3, "backend changes are not config versions"

        # leave: the leader, by id, through a follower; then a node by itself.
        out, _ = cli(followers[0], "leave", str(leader_id))
        assert out.startswith(f"node {leader_id} left the cluster"), out
        rest = followers
        new_leader_id = wait_until(lambda: agreed_leader(rest), timeout=15, what="two voters and a new leader")
        assert new_leader_id != leader_id
        goer = next(n for n in rest if n.idx != new_leader_id)
        out, _ = cli(goer, "leave")
        assert out.startswith(f"node {goer.idx} (n{goer.idx}) left the cluster"), out
        last = by_id[new_leader_id]
        wait_until(lambda: agreed_leader([last]) == last.idx, timeout=15, what="one voter left, leading")
        out, _ = cli(last, "status")
        assert f"state leader" in out and f"cluster config version: {v3}" in out, out
        # The last node still serves the cluster's config.
        assert ident_via(last.web_port) == "A"
    finally:
        problems = []
        for n in nodes:  # every node is stopped, even when one of them exits badly
            try:
                n.close()
            except AssertionError as e:
                problems.append(f"n{n.idx}: {e}")
        for b in backends.values():
            b.close()
        shutil.rmtree(tmp, ignore_errors=True)
        assert not problems, problems


def main():
    r = Runner()
    # One cluster on one io model (the cluster logic does not depend on it): epoll, unless the
    # command line restricts the models.
    model = "epoll" if not r.args.io_model else r.args.io_model[0]
    r.run(f"every_command[{model}]", case_every_command, r, model)
    r.finish()


if __name__ == "__main__":
    main()
