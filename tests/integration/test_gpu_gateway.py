"""The L7 gateway in front of simulated GPU servers (gpusim): model routing from the JSON body
(model after messages) and from X-Model, versions and adapters, model rewriting, OpenAI-shaped
404/400, SSE streaming through Voro, metrics scraping into the balancer's signals, passive
ejection after repeated 5xx, 503 when a known model has no healthy server, and the body limit
with Voro's own 100-continue."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

from voro_harness import Runner, Voro, dead_port, free_port, wait_until


class Gpusim:
    """One gpusim process. Its stderr goes to a file that close() reads: anything beyond the
    "listening on" line, or an exit status other than expect_exit (0 after SIGTERM; 3 after
    /control?die=1), is a failure."""

    def __init__(self, binary, name, models, *extra):
        self.port = free_port()
        self.name = name
        self.expect_exit = 0
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--name", name, "--models", models,
                                      "--step-ms", "2", "--prefill-ms", "1", *extra],
                                     stdout=subprocess.DEVNULL, stderr=self.err)
        try:
            wait_until(self._up, timeout=10, what=f"gpusim {name}")
        except AssertionError:
            self.close()
            raise

    def stderr_text(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def _up(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"gpusim {self.name} exited with {self.proc.returncode}: {self.stderr_text()}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def control(self, query):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        c.request("POST", "/control?" + query, body=b"")
        r = c.getresponse()
        r.read()
        c.close()
        return r.status

    def close(self):
        """Stops gpusim (SIGTERM) and returns what was wrong with its run, or None."""
        problem = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                problem = f"gpusim {self.name} did not stop on SIGTERM"
        text = self.stderr_text()
        self.err.close()
        noise = [ln for ln in text.splitlines() if ln.strip() and not GPUSIM_START_LINE.match(ln)]
        if problem is None and self.proc.returncode != self.expect_exit:
            problem = f"gpusim {self.name} exited with {self.proc.returncode}, expected {self.expect_exit}"
        if problem is None and noise:
            problem = f"gpusim {self.name} printed errors"
        return f"{problem}:\n{text}" if problem else None


GPUSIM_START_LINE = re.compile(r"^gpusim: \S+ listening on \S+ \(")


def gpusim_binary(build_dir):
    return os.path.join(build_dir, "tests", "gpusim", "gpusim")


def chat(port, model=None, stream=False, headers=None, max_tokens=4, raw_body=None, path="/v1/chat/completions"):
    body = {"messages": [{"role": "user", "content": "hello there"}], "max_tokens": max_tokens}
    if model is not None:
        body["model"] = model  # after messages, as many clients send it
    if stream:
        body["stream"] = True
    data = raw_body if raw_body is not None else json.dumps(body).encode()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    c.request("POST", path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
    r = c.getresponse()
    return c, r


class Farm:
    def __init__(self, r, model, extra_pool="", servers=None, declare=True):
        gs = gpusim_binary(r.args.build_dir)
        self.sims = servers or [
            Gpusim(gs, "g-llama", "llama-3-8b@v2"),
            Gpusim(gs, "g-lora", "llama-3-8b,lora:llama-3-8b-sql"),
            Gpusim(gs, "g-mistral", "mistral-7b"),
        ]
        models = ["llama-3-8b@v2", "llama-3-8b,lora:llama-3-8b-sql", "mistral-7b"]
        self.port = free_port()
        text = (f"[server]\nthreads = 1\n[node]\nadmin_address = {{admin}}\n"
                f"[listener api]\nmode = http\nbind = 127.0.0.1:{self.port}\npool = gpu\n"
                f"[route openai]\npath_prefix = /v1/\nmodel = *\npool = gpu\nrewrite_model = true\nbody_limit = 64k\n"
                f"[pool gpu]\nalgorithm = gpu_aware\nhealth_check = http\nhealth_path = /health\n"
                f"health_interval = 200ms\nhealth_rise = 1\nhealth_fall = 1\nmetrics_interval = 200ms\n"
                f"learn_models = {'false' if declare else 'true'}\n{extra_pool}")
        for i, s in enumerate(self.sims):
            declared = f" models={models[i]}" if declare else ""
            text += f"server = {s.name} {s.addr}{declared} metrics=http://{s.addr}/metrics\n"
        self.v = Voro(r.args.voro, text, io_model=model)

    def close(self):
        try:
            self.v.close()
        finally:
            problems = [p for p in (s.close() for s in self.sims) if p]
        if problems:  # reached only when voro closed cleanly: its failure, if any, is the one reported
            raise AssertionError("\n".join(problems))


def case_model_routing(r, model):
    f = Farm(r, model)
    try:
        seen = {}
        for m in ("mistral-7b", "llama-3-8b", "llama-3-8b@v2", "llama-3-8b-sql"):
            names = set()
            for _ in range(4):
                c, resp = chat(f.port, m)
                body = json.loads(resp.read())
                assert resp.status == 200, (m, resp.status, body)
                names.add(resp.getheader("X-Gpusim-Name"))
                if m == "llama-3-8b@v2":
                    # rewrite_model: the server declares llama-3-8b@v2 and serves it as llama-3-8b
                    assert body["model"] == "llama-3-8b", body["model"]
                c.close()
            seen[m] = names
        assert seen["mistral-7b"] == {"g-mistral"}, seen
        assert seen["llama-3-8b"] <= {"g-llama", "g-lora"}, seen
        assert seen["llama-3-8b@v2"] == {"g-llama"}, seen
        assert seen["llama-3-8b-sql"] == {"g-lora"}, seen
        # X-Model routes a request that has no body at all.
        c = http.client.HTTPConnection("127.0.0.1", f.port, timeout=10)
        for _ in range(3):
            c.request("GET", "/v1/models", headers={"X-Model": "mistral-7b"})
            resp = c.getresponse()
            resp.read()
            assert resp.status == 200 and resp.getheader("X-Gpusim-Name") == "g-mistral"
        c.request("GET", "/v1/models", headers={"X-Model": "nope-1b"})
        resp = c.getresponse()
        assert resp.status == 404 and json.loads(resp.read())["error"]["code"] == "model_not_found"
        c.close()
    finally:
        f.close()


def case_model_errors(r, model):
    f = Farm(r, model)
    try:
        c, resp = chat(f.port, "gpt-17")
        err = json.loads(resp.read())["error"]
        assert resp.status == 404 and err["code"] == "model_not_found" and err["param"] == "model", err
        assert "gpt-17" in err["message"]
        # The connection stays usable after a 404 (the body was read whole).
        c.request("POST", "/v1/chat/completions", body=json.dumps({"model": "mistral-7b", "messages": []}),
                  headers={"Content-Type": "application/json"})
        r2 = c.getresponse()
        err = json.loads(r2.read())["error"]
        # Voro routed it by model to g-mistral, which refuses the empty messages array itself
        assert r2.status == 400 and r2.getheader("X-Gpusim-Name") == "g-mistral", (r2.status, r2.getheaders())
        assert err["code"] == "empty_array" and err["param"] == "messages", err
        c.close()
        c, resp = chat(f.port, raw_body=b'{"messages": [1, 2', headers={})
        err = json.loads(resp.read())["error"]
        assert resp.status == 400 and err["code"] == "invalid_json", err
        c.close()
        c, resp = chat(f.port, raw_body=json.dumps({"model": "mistral-7b", "pad": "x" * 70000}).encode())
        resp.read()
        assert resp.status == 413, resp.status
        c.close()
        # Expect: 100-continue on a model route: Voro answers 100 itself, then routes.
        s = socket.create_connection(("127.0.0.1", f.port), timeout=10)
        body = json.dumps({"messages": [{"role": "user", "content": "x"}], "model": "mistral-7b", "max_tokens": 2}).encode()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        first = s.recv(100)
        assert first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), first
        s.sendall(body)
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(4096)
        assert data.startswith(b"HTTP/1.1 200"), data[:100]
        s.close()
    finally:
        f.close()


def case_streaming(r, model):
    f = Farm(r, model)
    try:
        c, resp = chat(f.port, "mistral-7b", stream=True, max_tokens=12)
        assert resp.status == 200 and resp.getheader("Content-Type", "").startswith("text/event-stream")
        events = []
        while True:
            line = resp.readline()
            if not line:
                break
            if line.startswith(b"data: "):
                events.append(line[6:].strip())
                if events[-1] == b"[DONE]":
                    break
        tokens = [e for e in events if e != b"[DONE]" and json.loads(e)["choices"]]
        assert len(tokens) == 12 and events[-1] == b"[DONE]", events[-3:]
        c.close()
    finally:
        f.close()


def case_metrics_scraped(r, model):
    f = Farm(r, model)
    try:
        def scraped():
            servers = f.v.stats()["pools"][0]["servers"]
            return all(0 <= s["signals"]["metrics_age_ms"] < 5000 for s in servers)
        wait_until(scraped, timeout=10, what="metrics scraped for every server")
        # Load one server with long requests: its scraped running count shows it.
        conns = []
        for _ in range(3):
            c, resp = chat(f.port, "mistral-7b", stream=True, max_tokens=400)
            assert resp.status == 200
            resp.readline()
            conns.append((c, resp))
        wait_until(lambda: f.v.stats()["pools"][0]["servers"][2]["signals"]["running"] >= 3, timeout=10,
                   what="running sequences scraped")
        assert f.v.stats()["pools"][0]["servers"][2]["signals"]["inflight"] == 3
        for c, _ in conns:
            c.close()
        wait_until(lambda: f.v.stats()["pools"][0]["servers"][2]["signals"]["inflight"] == 0, timeout=10,
                   what="in-flight count back to zero")
    finally:
        f.close()


def case_ejection_and_503(r, model):
    f = Farm(r, model, extra_pool="eject_consecutive = 3\neject_base_time = 30s\neject_max_percent = 50\nretries = 0\n")
    try:
        mistral = f.sims[2]
        assert mistral.control("fail_rate=1") == 200
        codes = []
        for _ in range(3):
            c, resp = chat(f.port, "mistral-7b")
            resp.read()
            codes.append(resp.status)
            c.close()
        assert codes == [500, 500, 500], codes  # the server's own 5xx pass through
        wait_until(lambda: f.v.stats()["pools"][0]["servers"][2]["health"] == "down", timeout=10,
                   what="server ejected after 3 consecutive 5xx")
        reason = f.v.stats()["pools"][0]["servers"][2]["reason"]
        assert "ejected" in reason, reason
        # A known model whose only server is out: 503 with a reason, not 404.
        c, resp = chat(f.port, "mistral-7b")
        err = json.loads(resp.read())["error"]
        assert resp.status == 503, (resp.status, err)
        c.close()
        # Other models are unaffected.
        c, resp = chat(f.port, "llama-3-8b")
        resp.read()
        assert resp.status == 200
        c.close()
    finally:
        f.close()


def case_learned_models(r, model):
    """No server declares its models: Voro learns them from each server's /v1/models and routes
    by what it learned; a model nobody serves becomes a 404 once every server was asked."""
    f = Farm(r, model, declare=False)
    try:
        # Every server was asked for its models (the control thread logs what it learned).
        wait_until(lambda: f.v.log_text().count("models: pool gpu server") >= 3, timeout=15,
                   what="model lists learned from every server")
        assert "server g-mistral (" in f.v.log_text() and "serves 1 model: mistral-7b" in f.v.log_text()
        names = set()
        for _ in range(8):
            c, resp = chat(f.port, "mistral-7b")
            resp.read()
            c.close()
            assert resp.status == 200, resp.status
            names.add(resp.getheader("X-Gpusim-Name"))
        assert names == {"g-mistral"}, names
        c, resp = chat(f.port, "gpt-17")
        err = json.loads(resp.read())["error"]
        assert resp.status == 404 and err["code"] == "model_not_found", (resp.status, err)
        c.close()
    finally:
        f.close()


def case_dead_server_is_marked_down(r, model):
    gs = gpusim_binary(r.args.build_dir)
    sims = [Gpusim(gs, "g-llama", "llama-3-8b@v2"), Gpusim(gs, "g-lora", "llama-3-8b,lora:llama-3-8b-sql"),
            Gpusim(gs, "g-mistral", "mistral-7b")]
    f = Farm(r, model, servers=sims)
    try:
        sims[0].expect_exit = 3  # gpusim's simulated crash
        try:
            sims[0].control("die=1")
        except (http.client.HTTPException, OSError):
            pass  # it may die before answering
        wait_until(lambda: f.v.stats()["pools"][0]["servers"][0]["health"] == "down", timeout=10,
                   what="dead server marked down by the HTTP check")
        for _ in range(4):
            c, resp = chat(f.port, "llama-3-8b")
            resp.read()
            assert resp.status == 200 and resp.getheader("X-Gpusim-Name") == "g-lora"
            c.close()
    finally:
        f.close()


def main():
    r = Runner()
    if not os.path.exists(gpusim_binary(r.args.build_dir)):
        print("gpusim is not built", flush=True)
        r.failed += 1
        r.finish()
    for model in r.models:
        for c in (case_model_routing, case_model_errors, case_streaming, case_metrics_scraped, case_ejection_and_503,
                  case_learned_models, case_dead_server_is_marked_down):
            r.run(f"{c.__name__[5:]}[{model}]", c, r, model)
    r.finish()


if __name__ == "__main__":
    main()
