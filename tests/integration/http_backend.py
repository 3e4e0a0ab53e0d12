"""A raw-socket HTTP/1.1 test backend for the proxy tests: keep-alive, chunked in both
directions, HEAD/204/304, close-delimited bodies, server-sent events paced by the test,
WebSocket-style upgrade with a byte echo, dropped connections and interim 100 responses.
It records what it saw so tests can check cause and effect."""
import hashlib
import json
import socket
import threading


class HttpBackend:
    def __init__(self, name="b", host="127.0.0.1", port=0):
        self.name = name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))  # a given port: a backend that comes back at its old address
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.addr = f"{host}:{self.port}"
        self.connections = 0
        self.requests = []          # (method, path, headers dict lower-case, body bytes)
        self.lock = threading.Lock()
        self.sse_acks = {}          # key -> list of threading.Event, one per event after the first
        self.stop_flag = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def close(self):
        self.stop_flag = True
        try:
            self.sock.close()
        except OSError:
            pass
        self.thread.join(2)

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
                self.connections += 1
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    # -- parsing ---------------------------------------------------------------------------
    @staticmethod
    def _read_until(c, buf, marker):
        while marker not in buf:
            d = c.recv(65536)
            if not d:
                return None, buf
            buf += d
        i = buf.index(marker) + len(marker)
        return buf[:i], buf[i:]

    def _read_body(self, c, headers, buf):
        if "content-length" in headers:
            n = int(headers["content-length"])
            while len(buf) < n:
                d = c.recv(65536)
                if not d:
                    raise ConnectionError("eof in body")
                buf += d
            return buf[:n], buf[n:]
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                line, buf = self._read_until(c, buf, b"\r\n")
                if line is None:
                    raise ConnectionError("eof in chunk size")
                size = int(line.split(b";")[0].strip(), 16)
                while len(buf) < size + 2:
                    d = c.recv(65536)
                    if not d:
                        raise ConnectionError("eof in chunk")
                    buf += d
                body += buf[:size]
                buf = buf[size + 2:]
                if size == 0:
                    return body, buf
        return b"", buf

    # -- one connection -------------------------------------------------------------------
    def _conn(self, c):
        c.settimeout(30)
        buf = b""
        try:
            while True:
                head, buf = self._read_until(c, buf, b"\r\n\r\n")
                if head is None:
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _version = lines[0].split(" ", 2)
                headers = {}
                raw_headers = []
                for line in lines[1:]:
                    if not line:
                        continue
                    k, v = line.split(":", 1)
                    raw_headers.append((k, v.strip()))
                    headers[k.strip().lower()] = v.strip()
                if path.startswith("/100") and headers.get("expect", "").lower() == "100-continue":
                    c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                body, buf = self._read_body(c, headers, buf)
                with self.lock:
                    self.requests.append((method, path, headers, body, raw_headers))
                if not self._respond(c, method, path, headers, body):
                    return
        except (OSError, ConnectionError, ValueError):
            return
        finally:
            c.close()

    def _send(self, c, status, body=b"", extra=(), head=False):
        h = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", f"X-Backend: {self.name}"] + list(extra)
        c.sendall(("\r\n".join(h) + "\r\n\r\n").encode() + (b"" if head else body))

    def _respond(self, c, method, path, headers, body):
        """Returns False when the connection must close."""
        route = path.split("?")[0]
        query = {}
        if "?" in path:
            for part in path.split("?", 1)[1].split("&"):
                k, _, val = part.partition("=")
                query[k] = val
        if route == "/echo" or route.startswith("/100"):
            info = json.dumps({"method": method, "path": path, "headers": headers,
                               "body_sha256": hashlib.sha256(body).hexdigest(), "body_len": len(body),
                               "backend": self.name}).encode()
            self._send(c, "200 OK", info, ["Content-Type: application/json", "Keep-Alive: timeout=5",
                                          "Connection: keep-alive"], head=method == "HEAD")
            return True
        if route == "/chunked":
            n = int(query.get("n", "5"))
            c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Backend: " + self.name.encode() + b"\r\n\r\n")
            for i in range(n):
                piece = (f"piece-{i};" * 100).encode()
                c.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            c.sendall(b"0\r\n\r\n")
            return True
        if route == "/sse":
            key = query.get("key", "k")
            n = int(query.get("n", "5"))
            acks = self.sse_acks.setdefault(key, [threading.Event() for _ in range(n)])
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            for i in range(n):
                ev = f"data: token-{i}\n\n".encode()
                c.sendall(b"%x\r\n%s\r\n" % (len(ev), ev))
                # The next token is only produced once the test saw this one arrive.
                if i + 1 < n and not acks[i].wait(5):
                    c.sendall(b"0\r\n\r\n")
                    return False
            c.sendall(b"0\r\n\r\n")
            return True
        if route == "/204":
            c.sendall(b"HTTP/1.1 204 No Content\r\nX-Backend: b\r\n\r\n")
            return True
        if route == "/304":
            c.sendall(b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 99\r\n\r\n")
            return True
        if route == "/close":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil-close-body")
            return False
        if route == "/drop":
            return False
        if route == "/closeafter":
            self._send(c, "200 OK", b"bye", ["Connection: keep-alive"])
            return False  # closes its end although it advertised keep-alive
        if route == "/ws":
            if headers.get("upgrade", "").lower() != "websocket":
                self._send(c, "400 Bad Request", b"no upgrade")
                return True
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello-from-ws")
            while True:
                d = c.recv(65536)
                if not d:
                    return False
                c.sendall(d)
        if route == "/status":
            code = int(query.get("code", "500"))
            self._send(c, f"{code} Status", b"status body")
            return True
        self._send(c, "404 Not Found", b"no such path")
        return True
