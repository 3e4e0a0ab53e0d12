"""Regressions the HTTP proxy fuzz target (tests/fuzz/fuzz_http_proxy.c) found, replayed through
the real binary on every io model (the fuzz target runs the worker on epoll only)."""
import socket
import threading

from voro_harness import Runner, Voro, connect, free_port, recv_until_eof, wait_until


class SilentServer:
    """Accepts, reads a request head, and closes without answering (bounded: stops on close())."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.heads = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def addr(self):
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            with c:
                c.settimeout(2)
                data = b""
                try:
                    while b"\r\n\r\n" not in data and len(data) < 65536:
                        d = c.recv(4096)
                        if not d:
                            break
                        data += d
                except OSError:
                    pass
                if b"\r\n\r\n" in data:
                    self.heads += 1

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


def case_retry_while_body_pending(r, model):
    # A GET announcing a body it has not sent yet: the first server closes without a byte, the
    # idempotent request is retried on the second, which closes too. Voro must answer 502 and
    # close; it used to re-arm the client read still pending from the first attempt, and the
    # connection then hung for ever (no answer, no timeout, never freed).
    servers = [SilentServer(), SilentServer()]
    port = free_port()
    text = (f"[server]\nthreads = 1\n[node]\nadmin_address = {{admin}}\n"
            f"[http]\nbody_timeout = 30s\nresponse_timeout = 30s\n"
            f"[listener web]\nmode = http\nbind = 127.0.0.1:{port}\npool = web\n"
            f"[pool web]\nretries = 1\nhealth_check = none\nlearn_models = false\n"
            + "".join(f"server = s{i} {s.addr}\n" for i, s in enumerate(servers)))
    v = Voro(r.args.voro, text, io_model=model)
    try:
        s = connect(port, timeout=5)  # far below the 30 s timeouts: only the fix answers in time
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
        try:
            reply = recv_until_eof(s)
        except socket.timeout:
            raise AssertionError("no answer and no close after both servers closed") from None
        s.close()
        assert reply.startswith(b"HTTP/1.1 502 "), reply[:200]
        assert sum(srv.heads for srv in servers) == 2, [srv.heads for srv in servers]  # tried, then retried once
        # ... and the connection is freed, not only closed
        wait_until(lambda: sum(w["active"] for w in v.stats()["workers"]) == 0, timeout=5, what="no connection left")
    finally:
        v.close()
        for srv in servers:
            srv.close()


def main():
    r = Runner()
    for model in r.models:
        r.run(f"retry_while_body_pending[{model}]", case_retry_while_body_pending, r, model)
    r.finish()


if __name__ == "__main__":
    main()
