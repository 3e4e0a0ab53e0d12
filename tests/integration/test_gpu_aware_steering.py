"""gpu_aware steering end to end: three gpusim servers serving one model behind a pool with
algorithm = gpu_aware share concurrent load; one is slowed down through its control endpoint
(POST /control?slow=N) and its share of requests falls while the other two take the load.
Every case runs on every io model."""
import http.client
import json
import os
import threading
import time

from test_gpu_gateway import Gpusim, gpusim_binary
from voro_harness import Runner, Voro, free_port, wait_until

MODEL = "llama-3-8b"


def farm_config(port, sims):
    text = (f"[server]\nthreads = 1\n[node]\nadmin_address = {{admin}}\n"
            f"[listener api]\nmode = http\nbind = 127.0.0.1:{port}\npool = gpu\n"
            f"[pool gpu]\nalgorithm = gpu_aware\nhealth_check = http\nhealth_path = /health\n"
            f"health_interval = 200ms\nhealth_rise = 1\nhealth_fall = 1\nmetrics_interval = 100ms\n"
            f"learn_models = false\nretries = 0\n")
    for s in sims:
        text += f"server = {s.name} {s.addr} models={MODEL} metrics=http://{s.addr}/metrics\n"
    return text


def load(port, n_requests, concurrency=6, max_tokens=8, timeout=30):
    """Sends n_requests chat completions from `concurrency` keep-alive clients; returns the
    count per gpusim name. Any non-200 answer or error fails."""
    counts = {}
    errors = []
    lock = threading.Lock()
    left = [n_requests]
    deadline = time.monotonic() + timeout
    body = json.dumps({"messages": [{"role": "user", "content": "hello there"}], "model": MODEL,
                       "max_tokens": max_tokens}).encode()

    def worker():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        try:
            while time.monotonic() < deadline:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                c.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
                resp = c.getresponse()
                data = resp.read()
                if resp.status != 200:
                    raise AssertionError(f"status {resp.status}: {data[:200]!r}")
                name = resp.getheader("X-Gpusim-Name")
                with lock:
                    counts[name] = counts.get(name, 0) + 1
        except Exception as e:  # noqa: BLE001 - reported by the caller
            errors.append(repr(e))
        finally:
            c.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    assert not errors, errors
    assert sum(counts.values()) == n_requests, (counts, n_requests)
    return counts


def case_slowed_server_loses_share(r, model):
    gs = gpusim_binary(r.args.build_dir)
    sims = []
    v = None
    try:
        for name in ("g0", "g1", "g2"):
            # Two sequences per GPU: six concurrent clients fill the farm, so the balancer
            # learns each server's capacity and spreads the load.
            sims.append(Gpusim(gs, name, MODEL, "--max-batch", "2"))
        port = free_port()
        v = Voro(r.args.voro, farm_config(port, sims), io_model=model)
        servers = lambda: v.stats()["pools"][0]["servers"]  # noqa: E731
        wait_until(lambda: all(s["health"] == "up" and 0 <= s["signals"]["metrics_age_ms"] < 2000 for s in servers()),
                   timeout=10, what="every server up and scraped")
        n = 180
        before = load(port, n)
        share_before = {k: before.get(k, 0) / n for k in ("g0", "g1", "g2")}
        # Balanced while all three are alike: each takes a fair part.
        assert all(s > 0.2 for s in share_before.values()), share_before
        # Slow g0 down 25 times (2 ms -> 50 ms per decode step).
        assert sims[0].control("slow=25") == 200
        # Wait until the balancer has seen it: a first round that is not counted (its
        # requests on g0 are what make the slowness visible to Voro).
        load(port, 30)
        after = load(port, n)
        share_after = {k: after.get(k, 0) / n for k in ("g0", "g1", "g2")}
        print(f"  {model}: shares before {share_before}, after slowing g0 x25 {share_after}", flush=True)
        assert share_after["g0"] < share_before["g0"] / 2 and share_after["g0"] < 0.15, (share_before, share_after)
        # The other two took the load, both of them.
        assert share_after["g1"] + share_after["g2"] > share_before["g1"] + share_before["g2"], (share_before, share_after)
        assert share_after["g1"] > 0.25 and share_after["g2"] > 0.25, share_after
        # Every server is still up: g0 was steered around, not ejected.
        assert all(s["health"] == "up" for s in servers()), servers()
    finally:
        if v:
            v.close()
        for s in sims:
            s.close()


def main():
    r = Runner()
    if not os.path.exists(gpusim_binary(r.args.build_dir)):
        print("gpusim is not built", flush=True)
        r.failed += 1
        r.finish()
    for model in r.models:
        r.run(f"slowed_server_loses_share[{model}]", case_slowed_server_loses_share, r, model)
    r.finish()


if __name__ == "__main__":
    main()
