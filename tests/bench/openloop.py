#!/usr/bin/env python3
"""openloop: open-loop streaming load generator for OpenAI-compatible servers (asyncio, standard library only).

Open loop: request i is due at its INTENDED time t0 + offset_i, whatever happened to earlier requests;
arrivals are Poisson (exponential gaps) at --rate, prompts and max_tokens uniform in their ranges, all drawn
from --seed so every balancer gets the same sequence. Each request is a streamed /v1/completions call
(`stream: true`, `stream_options.include_usage`) over a minimal HTTP/1.1 client on asyncio streams with
a pool of keep-alive connections. Time to first token (TTFT) is measured from the intended send time,
so a late send (the generator fell behind, or a connection had to be opened) counts its delay.

Modes:
  openloop.py --target 127.0.0.1:8080 --rate 27 --duration 60 [--event 30:http://127.0.0.1:9001/control?slow=4]
  openloop.py --target 127.0.0.1:8080 --sequential 200          (one request at a time: streaming latency)
Prints one JSON object on stdout: settings, and per request [intended_s, sent_s, ttft_s|null, end_s|null,
status, backend, error] with times relative to t0 (the schedule start).
"""

import argparse
import asyncio
import json
import random
import re
import resource
import sys
import time
import urllib.parse

MAX_HEAD = 16384
MAX_CHUNK = 1 << 20


def schedule(rate, duration, seed, prompt_min, prompt_max, tok_min, tok_max):
    """[(offset_s, prompt_tokens, max_tokens)]: Poisson arrivals over [0, duration)."""
    rng = random.Random(seed)
    out, t = [], 0.0
    for _ in range(10_000_000):
        t += rng.expovariate(rate)
        if t >= duration:
            break
        out.append((t, rng.randint(prompt_min, prompt_max), rng.randint(tok_min, tok_max)))
    return out


class Conn:
    """One HTTP/1.1 connection: asyncio streams."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer

    def close(self):
        try:
            self.writer.close()
        except (OSError, RuntimeError):
            pass


class Client:
    """Keep-alive connection pool to one host:port."""

    def __init__(self, host, port, max_idle=1024):
        self.host, self.port = host, port
        self.idle = []
        self.max_idle = max_idle
        self.opened = 0

    async def get(self):
        while self.idle:
            c = self.idle.pop()
            if not c.reader.at_eof() and not c.writer.is_closing():
                return c, True
            c.close()
        r, w = await asyncio.open_connection(self.host, self.port, limit=MAX_CHUNK)
        self.opened += 1
        return Conn(r, w), False

    def put(self, c):
        if len(self.idle) < self.max_idle:
            self.idle.append(c)
        else:
            c.close()

    def close_all(self):
        for c in self.idle:
            c.close()
        self.idle.clear()


async def read_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > MAX_HEAD:
        raise ValueError("response head too large")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise ValueError(f"bad status line {lines[0][:80]!r}")
    headers = {}
    for ln in lines[1:]:
        if ":" in ln:
            k, v = ln.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return parts[0], int(parts[1]), headers


async def body_chunks(reader, headers):
    """Yields the body's pieces as they arrive (chunked, Content-Length or until close)."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            line = await reader.readuntil(b"\r\n")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size > MAX_CHUNK:
                raise ValueError("chunk too large")
            if size == 0:
                # trailers, then the empty line
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return
            data = await reader.readexactly(size + 2)
            yield data[:-2]
    elif "content-length" in headers:
        left = int(headers["content-length"])
        while left > 0:
            data = await reader.read(min(left, 65536))
            if not data:
                raise ConnectionError("EOF inside the body")
            left -= len(data)
            yield data
    else:
        while True:
            data = await reader.read(65536)
            if not data:
                return
            yield data


def request_bytes(host, port, model, prompt_tokens, max_tokens, stream=True):
    # gpusim counts a prompt's tokens as its characters / 4.
    body = {"model": model, "prompt": "abcd" * prompt_tokens, "max_tokens": max_tokens}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    data = json.dumps(body, separators=(",", ":")).encode()
    head = (f"POST /v1/completions HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Accept: text/event-stream\r\nContent-Length: {len(data)}\r\n\r\n").encode()
    return head + data


TOKEN_EVENT = re.compile(rb'"choices"\s*:\s*\[\s*\{')
USAGE = re.compile(rb'"completion_tokens"\s*:\s*(\d+)')


class SSECounter:
    """Counts token events in an SSE byte stream with byte searches only (no JSON parsing per event:
    the generator shares its core with the backends and must stay cheap per token)."""

    def __init__(self, clock):
        self.clock = clock
        self.pending = bytearray()
        self.first = None
        self.tokens = 0
        self.usage = None
        self.done = False

    def feed(self, data):
        self.pending += data
        end = self.pending.rfind(b"\n\n")
        if end < 0:
            return
        evs = bytes(self.pending[:end + 2])
        del self.pending[:end + 2]
        n = len(TOKEN_EVENT.findall(evs))
        if n:
            if self.first is None:
                self.first = self.clock()
            self.tokens += n
        m = USAGE.search(evs)
        if m:
            self.usage = int(m.group(1))
        if b"data: [DONE]" in evs or b"data:[DONE]" in evs:
            self.done = True


async def chunked_body(reader, sink):
    """Decodes a chunked body from large reads (one await per arrival, not per chunk) into sink(bytes)."""
    raw = bytearray()
    left = -1  # bytes of the current chunk still due (+2 for its CRLF); -1 = expecting a size line
    while True:
        while True:
            if left < 0:
                i = raw.find(b"\r\n")
                if i < 0:
                    if len(raw) > 4096:
                        raise ValueError("bad chunk size line")
                    break
                size = int(bytes(raw[:i]).split(b";", 1)[0].strip() or b"0", 16)
                del raw[:i + 2]
                if size == 0:
                    # No trailers from the servers under test: the last chunk is followed by CRLF.
                    while len(raw) < 2:
                        data = await reader.read(65536)
                        if not data:
                            raise ConnectionError("EOF after the last chunk")
                        raw += data
                    if raw[:2] != b"\r\n":
                        raise ValueError("trailers are not supported")
                    return
                left = size + 2
            else:
                if len(raw) < left:
                    if len(raw) > 2 and left > 2:
                        take = min(len(raw), left - 2)
                        sink(bytes(raw[:take]))
                        del raw[:take]
                        left -= take
                    break
                sink(bytes(raw[:left - 2]))
                del raw[:left]
                left = -1
        data = await reader.read(65536)
        if not data:
            raise ConnectionError("EOF inside a chunked body")
        raw += data


async def one_stream(client, req, max_tokens, t0, clock):
    """Sends req, reads the SSE stream. Returns (ttft_abs|None, status, backend, error|None)."""
    for attempt in range(2):
        conn, reused = await client.get()
        got_any = False
        try:
            conn.writer.write(req)
            await conn.writer.drain()
            version, status, headers = await read_head(conn.reader)
            got_any = True
            backend = headers.get("x-gpusim-name", "")
            sse = SSECounter(clock)
            errbody = bytearray()
            sink = sse.feed if status == 200 else errbody.extend
            if "chunked" in headers.get("transfer-encoding", "").lower():
                await chunked_body(conn.reader, sink)
            else:
                async for piece in body_chunks(conn.reader, headers):
                    sink(piece)
            keep = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
            if keep and status == 200:
                client.put(conn)
            else:
                conn.close()
            if status != 200:
                return None, status, backend, f"HTTP {status}: {bytes(errbody[:120])!r}"
            if not sse.done or sse.tokens != max_tokens or sse.usage != max_tokens:
                return sse.first, status, backend, f"short stream: {sse.tokens} token events, usage {sse.usage}, " \
                    f"[DONE] {'seen' if sse.done else 'missing'}, wanted {max_tokens}"
            return sse.first, status, backend, None
        except (OSError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            conn.close()
            # A pooled connection the server closed while idle: retry once on a fresh one.
            if reused and not got_any and attempt == 0:
                continue
            return None, 0, "", f"{type(e).__name__}: {e}"
    return None, 0, "", "unreachable"


async def post_control(url):
    u = urllib.parse.urlsplit(url)
    r, w = await asyncio.open_connection(u.hostname, u.port or 80)
    path = u.path + ("?" + u.query if u.query else "")
    w.write(f"POST {path} HTTP/1.1\r\nHost: {u.netloc}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
    await w.drain()
    data = await r.read()
    w.close()
    return data.split(b"\r\n", 1)[0].decode(errors="replace")


async def run(a):
    loop = asyncio.get_running_loop()
    clock = loop.time
    host, port = a.target.rsplit(":", 1)
    port = int(port)
    client = Client(host, port)
    results = []
    events_done = []

    if a.sequential:
        rng = random.Random(a.seed)
        t0 = clock()
        for i in range(a.sequential):
            req = request_bytes(host, port, a.model, a.seq_prompt, a.seq_max_tokens)
            sent = clock()
            try:
                first, status, backend, err = await asyncio.wait_for(
                    one_stream(client, req, a.seq_max_tokens, t0, clock), a.timeout)
            except asyncio.TimeoutError:
                first, status, backend, err = None, 0, "", f"timeout after {a.timeout} s"
            end = clock()
            results.append([sent - t0, sent - t0, None if first is None else first - sent,
                            end - t0, status, backend, err])
            await asyncio.sleep(a.seq_gap_ms / 1000.0 * (0.5 + rng.random()))
        client.close_all()
        return {"mode": "sequential", "requests": results, "connections_opened": client.opened}

    sched = schedule(a.rate, a.duration, a.seed, a.prompt_min, a.prompt_max, a.tokens_min, a.tokens_max)
    events = []
    for spec in a.event:
        at, _, url = spec.partition(":")
        events.append((float(at), url))
    # Connections are opened ahead (the pool would otherwise add connect time to the first requests).
    warm = []
    for _ in range(min(a.preconnect, len(sched))):
        try:
            r, w = await asyncio.open_connection(host, port, limit=MAX_CHUNK)
            warm.append(Conn(r, w))
        except OSError:
            break
    for c in warm:
        client.put(c)
    client.opened += len(warm)
    t0 = clock() + 0.2

    async def one(i, off, ptok, mtok):
        intended = t0 + off
        sent = clock()
        req = request_bytes(host, port, a.model, ptok, mtok)
        try:
            first, status, backend, err = await asyncio.wait_for(one_stream(client, req, mtok, t0, clock), a.timeout)
        except asyncio.TimeoutError:
            first, status, backend, err = None, 0, "", f"timeout after {a.timeout} s"
        end = clock()
        results[i] = [off, sent - t0, None if first is None else first - intended, end - t0, status, backend, err,
                      ptok, mtok]

    async def fire_events():
        for at, url in sorted(events):
            delay = t0 + at - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                line = await asyncio.wait_for(post_control(url), 5.0)
            except (OSError, asyncio.TimeoutError) as e:
                line = f"error: {e}"
            events_done.append([at, clock() - t0, url, line])

    results = [None] * len(sched)
    tasks = []
    ev_task = asyncio.create_task(fire_events()) if events else None
    lateness = 0.0
    for i, (off, ptok, mtok) in enumerate(sched):
        delay = t0 + off - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        lateness = max(lateness, clock() - (t0 + off))
        tasks.append(asyncio.create_task(one(i, off, ptok, mtok)))
    sched_end = clock()
    # Drain: requests still running after --drain seconds count as not completed.
    if tasks:
        _done, pending = await asyncio.wait(tasks, timeout=a.drain)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    if ev_task:
        await asyncio.gather(ev_task, return_exceptions=True)
    for i, r in enumerate(results):
        if r is None:
            off, ptok, mtok = sched[i]
            results[i] = [off, None, None, None, 0, "", f"not finished {a.drain} s after the schedule ended",
                          ptok, mtok]
    client.close_all()
    return {"mode": "open", "offered": len(sched), "duration": a.duration, "rate": a.rate,
            "schedule_end_s": sched_end - t0, "max_send_lateness_s": lateness, "events": events_done,
            "connections_opened": client.opened, "requests": results}


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", required=True, help="HOST:PORT of the proxy or server")
    ap.add_argument("--model", default="gpusim-8b")
    ap.add_argument("--rate", type=float, default=10.0, help="mean arrivals per second (Poisson)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of arrivals")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--prompt-min", type=int, default=64)
    ap.add_argument("--prompt-max", type=int, default=512)
    ap.add_argument("--tokens-min", type=int, default=16)
    ap.add_argument("--tokens-max", type=int, default=128)
    ap.add_argument("--timeout", type=float, default=60.0, help="per-request limit (s)")
    ap.add_argument("--drain", type=float, default=20.0, help="wait after the last send (s)")
    ap.add_argument("--preconnect", type=int, default=64, help="keep-alive connections opened before t0")
    ap.add_argument("--event", action="append", default=[], help="AT_S:URL — POST URL at AT_S into the schedule")
    ap.add_argument("--sequential", type=int, default=0, help="N requests one at a time (latency mode)")
    ap.add_argument("--seq-prompt", type=int, default=16)
    ap.add_argument("--seq-max-tokens", type=int, default=4)
    ap.add_argument("--seq-gap-ms", type=float, default=5.0)
    a = ap.parse_args(argv)
    if not (0 < a.rate <= 100000 and 0 < a.duration <= 3600 and 1 <= a.prompt_min <= a.prompt_max
            and 1 <= a.tokens_min <= a.tokens_max and 0 <= a.sequential <= 100000):
        ap.error("parameter out of range")
    return a


def main(argv):
    a = parse_args(argv)
    started = time.time()
    out = asyncio.run(run(a))
    out["wall_s"] = round(time.time() - started, 2)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu_s"] = round(ru.ru_utime + ru.ru_stime, 2)
    out["settings"] = vars(a)
    sys.stdout.write(json.dumps(out, separators=(",", ":")) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
