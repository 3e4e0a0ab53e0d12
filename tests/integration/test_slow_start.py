"""Slow start end to end (HTTP pool, slow_start = 2s, round_robin): a server that comes back up
after being down starts at a low weight that rises to its full weight over the slow-start
window, in /stats (pools[].servers[].signals.weight_permille) and in the share of requests it
receives; a server that never went down keeps its full weight. Every case runs on every io
model."""
import http.client
import json
import time

from http_backend import HttpBackend
from voro_harness import Runner, Voro, free_port, wait_until

SLOW_START_S = 2.0
WINDOW_S = 0.4


def config(port, servers):
    text = ("[server]\nthreads = 1\n[node]\nadmin_address = {admin}\n"
            f"[listener web]\nmode = http\nbind = 127.0.0.1:{port}\npool = web\n"
            "[pool web]\nalgorithm = round_robin\nretries = 0\nlearn_models = false\n"
            f"slow_start = {int(SLOW_START_S * 1000)}ms\n"
            "health_check = tcp\nhealth_interval = 100ms\nhealth_rise = 1\nhealth_fall = 1\n")
    return text + "".join(f"server = s{i} {addr}\n" for i, addr in enumerate(servers))


def server(v, name):
    return next(s for s in v.stats()["pools"][0]["servers"] if s["name"] == name)


def case_ramp_in_stats_and_share(r, model):
    b0 = HttpBackend("s0")
    b1 = HttpBackend("s1")
    b1_port = b1.port
    port = free_port()
    v = Voro(r.args.voro, config(port, [b0.addr, b1.addr]), io_model=model)
    c = None
    try:
        # Servers present from the start are not ramped.
        assert [server(v, n)["signals"]["weight_permille"] for n in ("s0", "s1")] == [1000, 1000]
        b1.close()
        wait_until(lambda: server(v, "s1")["health"] == "down", timeout=10, what="s1 down")
        b1 = HttpBackend("s1", port=b1_port)
        wait_until(lambda: server(v, "s1")["health"] == "up", timeout=10, what="s1 up again")
        t_up = time.monotonic()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        windows = []  # (seconds since up, weight_permille at the start of the window, share of s1)
        while True:
            t = time.monotonic() - t_up
            if t > SLOW_START_S + 2 * WINDOW_S:
                break
            st = server(v, "s1")
            w1 = st["signals"]["weight_permille"]
            assert st["health"] == "up", st
            counts = {"s0": 0, "s1": 0}
            end = time.monotonic() + WINDOW_S
            n = 0
            while time.monotonic() < end and n < 5000:
                c.request("GET", f"/echo?n={n}")
                resp = c.getresponse()
                body = resp.read()
                assert resp.status == 200, (resp.status, body[:100])
                counts[json.loads(body)["backend"]] += 1
                n += 1
            assert n >= 20, f"only {n} requests in a {WINDOW_S}s window"
            windows.append((round(t, 2), w1, round(counts["s1"] / n, 3)))
        print(f"  {model}: (s since up, weight_permille, share of s1): {windows}", flush=True)
        weights = [w for _, w, _ in windows]
        shares = [s for _, _, s in windows]
        # /stats: the weight starts low, never falls, and reaches full weight after the window.
        assert weights[0] < 400, windows
        assert all(a <= b for a, b in zip(weights, weights[1:])), windows
        assert any(400 <= w < 1000 for w in weights), windows  # seen mid-ramp
        assert weights[-1] == 1000, windows
        assert server(v, "s0")["signals"]["weight_permille"] == 1000
        # Requests: a trickle at first, rising to an even split once the ramp is over.
        assert shares[0] < 0.25, windows
        assert shares[-1] > 0.4, windows
        half = len(shares) // 2
        assert sum(shares[:half]) / half < sum(shares[half:]) / (len(shares) - half) - 0.1, windows
    finally:
        if c:
            c.close()
        v.close()
        b0.close()
        b1.close()


def main():
    r = Runner()
    for model in r.models:
        r.run(f"ramp_in_stats_and_share[{model}]", case_ramp_in_stats_and_share, r, model)
    r.finish()


if __name__ == "__main__":
    main()
