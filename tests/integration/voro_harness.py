"""Shared driver for Voro's integration tests: free ports, backends, a managed voro process,
admin API helpers, and a tiny runner printing one line per case and a closing
'N passed, N failed' line. Everything runs on loopback and every process is killed by PID."""
import argparse
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

IO_MODELS = ["io_uring", "epoll", "poll", "select"]


# One definition of strict mode (CI=true or VORO_TEST_STRICT=1) and of "this kernel has io_uring"
# for the integration tests and the benchmarks.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from benchlib import kernel_has_io_uring, strict  # noqa: E402,F401


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--voro", required=True)
    ap.add_argument("--build-dir", default=".")
    ap.add_argument("--io-model", action="append", help="restrict to these io models")
    ap.add_argument("-k", help="run only cases whose name contains this")
    return ap.parse_args()


def free_port(kind=socket.SOCK_STREAM, host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


_dead_port_holders = []


def dead_port(host="127.0.0.1"):
    """A port nothing listens on, kept bound (not listening) for the life of the test process:
    connects to it are refused, and no connection can ever pick it as its own source port (a
    plain unused port in the ephemeral range can: TCP then connects to itself)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((host, 0))
    _dead_port_holders.append(s)
    return s.getsockname()[1]


def wait_until(pred, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - report the last error on timeout
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Backend:
    """A threaded TCP backend on loopback. mode 'echo' echoes bytes; 'ident' writes its name
    first then echoes; 'halfclose' reads to EOF then replies with the sha256 of what it got."""

    def __init__(self, name, mode="echo", host="127.0.0.1", port=None):
        self.name = name
        self.mode = mode
        self.host = host
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port or 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.eofs = 0
        self.stop_flag = False
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def addr(self):
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stop_flag:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.accepted += 1
            threading.Thread(target=self._handle, args=(c,), daemon=True).start()

    def _handle(self, c):
        c.settimeout(30)
        try:
            if self.mode == "ident":
                c.sendall(self.name.encode() + b"\n")
            if self.mode == "halfclose":
                h = hashlib.sha256()
                while True:
                    d = c.recv(65536)
                    if not d:
                        break
                    h.update(d)
                with self.lock:
                    self.eofs += 1
                c.sendall(h.hexdigest().encode())
                c.shutdown(socket.SHUT_WR)
                return
            while True:
                d = c.recv(65536)
                if not d:
                    with self.lock:
                        self.eofs += 1
                    break
                c.sendall(d)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.stop_flag = True
        try:
            self.sock.close()
        except OSError:
            pass
        self.thread.join(2)


class UdpBackend:
    """UDP echo backend that prefixes replies with its name."""

    def __init__(self, name, host="127.0.0.1"):
        self.name = name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        self.addr = f"{host}:{self.port}"
        self.peers = set()
        self.stop_flag = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stop_flag:
            try:
                d, peer = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            self.peers.add(peer)
            self.sock.sendto(self.name.encode() + b":" + d, peer)

    def close(self):
        self.stop_flag = True
        self.sock.close()
        self.thread.join(2)


class Voro:
    """A voro process with a config written to a temp dir; killed by PID on close."""

    def __init__(self, binary, config_text, io_model=None, extra_args=(), preexec_fn=None):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="voro-it-")
        self.conf = os.path.join(self.dir, "voro.conf")
        self.admin_port = free_port()
        self.write_config(config_text)
        args = [binary, "-c", self.conf]
        if io_model:
            args += ["--io-model", io_model]
        args += list(extra_args)
        self.log_path = os.path.join(self.dir, "voro.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=preexec_fn)
        try:
            wait_until(self._ready, timeout=15, what="voro admin API")
        except AssertionError:
            text = self.log_text()
            self.close()
            raise AssertionError("voro did not start:\n" + text)
        self._check_io_model(io_model)

    def _check_io_model(self, io_model):
        """Under strict(), --io-model io_uring on a kernel that has it must run io_uring: a silent
        fallback to epoll would let every io_uring case pass without io_uring."""
        if io_model != "io_uring" or not strict() or not kernel_has_io_uring():
            return
        running = self.stats()["io_model"]["running"]
        if running != "io_uring":
            text = self.log_text()
            self.close()
            raise AssertionError(f"io_uring requested on kernel {os.uname().release}, which has it, "
                                 f"but voro runs {running}:\n{text}")

    def write_config(self, text):
        text = text.replace("{admin}", f"127.0.0.1:{self.admin_port}")
        with open(self.conf, "w") as f:
            f.write(text)

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("voro exited with %s:\n%s" % (self.proc.returncode, self.log_text()))
        try:
            return self.get("/healthz")[0] == 200
        except OSError:
            return False

    def get(self, path, timeout=5):
        req = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}{path}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def stats(self):
        status, body = self.get("/stats")
        assert status == 200, (status, body)
        return json.loads(body)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        return self.proc.wait(timeout=timeout)

    def log_text(self, limit=6000):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")[-limit:]

    def close(self):
        """Stops voro with SIGTERM (a second one after 5 s cuts the drain short) and, unless a
        failure is already propagating, fails when it did not exit cleanly or a sanitizer
        reported anything (leaks included: ASan checks them at a clean exit)."""
        problem = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
                    problem = "voro did not stop on SIGTERM"
            if problem is None and self.proc.returncode != 0:
                problem = f"voro exited with {self.proc.returncode} on SIGTERM"
        text = self.log_text(limit=1 << 20)
        if "AddressSanitizer" in text or "LeakSanitizer" in text or "runtime error:" in text:
            problem = "sanitizer report"
        self.log.close()
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)
        if problem and sys.exc_info()[0] is None:
            raise AssertionError(problem + ":\n" + text)


def connect(port, host="127.0.0.1", timeout=10):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((host, port))
    return s


def recv_exactly(s, n):
    chunks = []
    got = 0
    while got < n:
        d = s.recv(min(1 << 20, n - got))
        if not d:
            raise AssertionError(f"EOF after {got} of {n} bytes")
        chunks.append(d)
        got += len(d)
    return b"".join(chunks)


def recv_until_eof(s, limit=64 << 20):
    chunks = []
    total = 0
    while total < limit:
        d = s.recv(65536)
        if not d:
            break
        chunks.append(d)
        total += len(d)
    return b"".join(chunks)


def is_closed_by_peer(s, timeout=5):
    """True when the peer closed the connection (EOF or reset) within timeout."""
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


class Runner:
    def __init__(self):
        self.args = parse_args()
        self.passed = 0
        self.failed = 0
        self.models = self.args.io_model or IO_MODELS

    def run(self, name, fn, *a):
        if self.args.k and self.args.k not in name:
            return
        t0 = time.monotonic()
        try:
            fn(*a)
            self.passed += 1
            print(f"PASS {name} ({time.monotonic() - t0:.2f}s)", flush=True)
        except Exception:  # noqa: BLE001 - every failure is reported and counted
            self.failed += 1
            print(f"FAIL {name}\n{traceback.format_exc()}", flush=True)

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        sys.exit(1 if self.failed or not self.passed else 0)
