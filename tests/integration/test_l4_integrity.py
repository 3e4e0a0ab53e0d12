"""Cross-connection integrity of the L4 proxy under aborts, on all four io models: thousands of
TCP flows through one worker to an echo backend, each with its own random payload in which every
1 KiB block carries the flow's id; flows are large enough for the proxy to switch to splice(2),
and half of them are aborted at a random point (RST via SO_LINGER 0, or a close with unread data).
Every surviving flow must get back exactly its own bytes (same length, same sha256), no flow
(aborted or not) may receive a single byte of another, and every connection is freed afterwards.
A pipe that went back to the splice pool holding an aborted flow's bytes would hand them to the
next flow that takes it: that is what this test catches."""
import hashlib
import os
import random
import selectors
import socket
import struct
import subprocess
import time
import zlib

from voro_harness import Runner, Voro, free_port, wait_until

BLOCK = 1024
MAGIC = 0xB10C
HDR = struct.Struct("<IHH")  # flow id, block index (mod 2^16), magic
FLOWS = 2000                 # per io model
CONCURRENCY = 96
MIN_SIZE, MAX_SIZE = 48 << 10, 320 << 10
MODEL_DEADLINE_S = 25.0      # one model's flows must all finish within this


def make_payload(fid, size):
    buf = bytearray(os.urandom(size))
    for blk, off in enumerate(range(0, size, BLOCK)):
        buf[off:off + HDR.size] = HDR.pack(fid, blk & 0xFFFF, MAGIC)[: max(0, min(HDR.size, size - off))]
    return bytes(buf)


def foreign_ids(data, own):
    """Flow ids named by block headers found anywhere in `data` other than `own`."""
    ids = set()
    needle = struct.pack("<H", MAGIC)
    i = data.find(needle)
    while i >= 0 and len(ids) < 8:
        if i >= 6:
            fid, _, magic = HDR.unpack_from(data, i - 6)
            if magic == MAGIC and fid != own and fid < FLOWS:
                ids.add(fid)
        i = data.find(needle, i + 1)
    return ids


class Flow:
    def __init__(self, fid, port, rng):
        self.fid = fid
        self.size = rng.randint(MIN_SIZE, MAX_SIZE)
        self.payload = make_payload(fid, self.size)
        self.digest = hashlib.sha256(self.payload).digest()
        self.abort_at = rng.randint(1, self.size - 1) if fid % 2 else None
        self.rst = rng.random() < 0.5
        self.sent = 0
        self.recvd = 0
        self.hash = hashlib.sha256()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.connect_ex(("127.0.0.1", port))

    def abort(self):
        if self.rst:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def run_flows(port, seed):
    """Runs FLOWS flows, CONCURRENCY at a time; returns (completed, aborted, errors)."""
    rng = random.Random(seed)
    sel = selectors.DefaultSelector()
    next_fid, live = 0, 0
    completed = aborted = 0
    errors = []
    deadline = time.monotonic() + MODEL_DEADLINE_S

    def start():
        nonlocal next_fid, live
        f = Flow(next_fid, port, rng)
        next_fid += 1
        live += 1
        sel.register(f.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, f)

    def end(f, how):
        nonlocal live, completed, aborted
        sel.unregister(f.sock)
        live -= 1
        if how == "abort":
            f.abort()
            aborted += 1
        else:
            f.sock.close()
            if how == "done":
                completed += 1

    try:
        while next_fid < FLOWS and live < CONCURRENCY:
            start()
        while live:
            if time.monotonic() > deadline:
                errors.append(f"{live} flows still running after {MODEL_DEADLINE_S}s "
                              f"({completed} completed, {aborted} aborted)")
                break
            for key, ev in sel.select(timeout=1.0):
                f = key.data
                if f.sock.fileno() < 0:
                    continue  # ended earlier in this batch
                try:
                    if ev & selectors.EVENT_WRITE and f.sent < f.size:
                        f.sent += f.sock.send(memoryview(f.payload)[f.sent:f.sent + (64 << 10)])
                        if f.sent == f.size:
                            sel.modify(f.sock, selectors.EVENT_READ, f)
                    if f.abort_at is not None and f.sent >= f.abort_at:
                        end(f, "abort")
                    elif ev & selectors.EVENT_READ:
                        data = f.sock.recv(256 << 10)
                        if not data:
                            errors.append(f"flow {f.fid}: EOF after {f.recvd} of {f.size} bytes")
                            end(f, "error")
                        elif f.recvd + len(data) > f.size or data != f.payload[f.recvd:f.recvd + len(data)]:
                            ids = foreign_ids(data, f.fid)
                            errors.append(f"flow {f.fid}: wrong bytes at offset {f.recvd} "
                                          f"(blocks of flows {sorted(ids) or '?'} in them)")
                            end(f, "error")
                        else:
                            f.recvd += len(data)
                            f.hash.update(data)
                            if f.recvd == f.size:
                                if f.hash.digest() != f.digest:
                                    errors.append(f"flow {f.fid}: checksum mismatch")
                                end(f, "done")
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError as e:
                    if f.abort_at is None:
                        errors.append(f"flow {f.fid}: {e!r} after {f.recvd} of {f.size} bytes")
                    end(f, "abort" if f.abort_at is not None else "error")
                if live < CONCURRENCY and next_fid < FLOWS:
                    start()
                if len(errors) > 20:
                    break
            if len(errors) > 20:
                break
    finally:
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        sel.close()
    return completed, aborted, errors


def count_pipes(pid):
    n = 0
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{name}").startswith("pipe:")
        except OSError:
            pass
    return n


class EchoBackend:
    """The C echo backend (tests/bench/echo_backend.c), killed by PID on close."""

    def __init__(self, build_dir):
        path = os.path.join(build_dir, "tests", "bench", "echo_backend")
        if not os.access(path, os.X_OK):
            raise AssertionError(f"{path} is missing: build the echo_backend target")
        self.proc = subprocess.Popen([path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline().decode().split()
        if not line or line[0] != "READY":
            self.close()
            raise AssertionError(f"echo_backend did not start: {line}")
        self.port = int(line[1])

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()
        self.proc.stderr.close()


def case_integrity_under_aborts(r, model):
    backend = EchoBackend(r.args.build_dir)
    port = free_port()
    # One worker and a small pipe pool: pipes are reused often, by flows of both directions.
    cfg = (f"[server]\nthreads = 1\nsplice = on\npipes = 24\n[node]\nadmin_address = {{admin}}\n"
           f"[listener main]\nmode = tcp\nbind = 127.0.0.1:{port}\npool = app\n"
           f"[pool app]\nhealth_check = none\nserver = e 127.0.0.1:{backend.port}\n")
    v = None
    try:
        v = Voro(r.args.voro, cfg, io_model=model)
        assert v.stats()["io_model"]["running"] == model
        pipes_before = count_pipes(v.proc.pid)
        completed, aborted, errors = run_flows(port, seed=zlib.crc32(model.encode()))
        assert not errors, f"{len(errors)} integrity errors ({completed} completed, {aborted} aborted):\n" + \
            "\n".join(errors[:20])
        assert completed == FLOWS // 2 and aborted == FLOWS - FLOWS // 2, (completed, aborted)
        wait_until(lambda: sum(w["active"] for w in v.stats()["workers"]) == 0, timeout=15,
                   what="every connection freed")
        # Splice was in use: the pool keeps the pipes it created (two descriptors each).
        assert count_pipes(v.proc.pid) > pipes_before, "no pipe was ever created: splice not in use"
        st = v.stats()
        moved = st["listeners"][0]["bytes_in"]
        assert moved > FLOWS // 2 * MIN_SIZE, st["listeners"][0]
    finally:
        if v:
            v.close()
        backend.close()


def main():
    r = Runner()
    for model in r.models:
        r.run(f"integrity_under_aborts[{model}]", case_integrity_under_aborts, r, model)
    r.finish()


if __name__ == "__main__":
    main()
