#!/usr/bin/env python3
"""A small SIP-over-TLS peer for veil's TLS tests, on Python's ssl module only.

Debian's SIPp has no TLS, so this plays the TLS side; it shares no code with veil.

  uac   connect to veil over TLS, place --calls calls (INVITE, expect 100/180/200,
        ACK, BYE, expect 200) on one connection.
  uas   accept TLS connections, answer INVITE 180 + 200 with SDP, ACK, BYE 200,
        OPTIONS 200; record the SNI names and the number of accepted connections.
  ping  connect, send an RFC 5626 double-CRLF ping, expect a single CRLF pong.
  refused  connect (normally without a client certificate), send an INVITE and
        expect no SIP response: the handshake or the connection fails.

Every message sent and received goes to --trace in SIPp's -trace_msg layout, so
that the Rust harness checks it like a SIPp trace. Exit 0 on success.
"""

import argparse
import json
import random
import socket
import ssl
import sys
import threading
import time

SEP = "-" * 47


class Trace:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        if path:
            open(path, "w").close()

    def log(self, direction, data):
        if not self.path:
            return
        text = data.decode("utf-8", "replace")
        with self.lock, open(self.path, "a") as f:
            f.write(f"{SEP} {time.time():.6f}\nTLS message {direction} ({len(data)} bytes):\n\n{text}\n\n")


class Conn:
    """SIP framing over one stream: Content-Length delimited, CRLF keep-alives seen."""

    def __init__(self, sock, trace):
        self.sock = sock
        self.trace = trace
        self.buf = b""

    def send(self, msg):
        data = msg.encode()
        self.trace.log("sent", data)
        self.sock.sendall(data)

    def read_more(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def next(self):
        """The next message (str), or "PING" for a double CRLF, or "PONG" for a lone CRLF."""
        while True:
            if self.buf.startswith(b"\r\n\r\n"):
                self.buf = self.buf[4:]
                return "PING"
            if self.buf.startswith(b"\r\n") and len(self.buf) >= 2:
                if len(self.buf) == 2 or not self.buf[2:3] == b"\r":
                    self.buf = self.buf[2:]
                    return "PONG"
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0 and not self.buf.startswith(b"\r\n"):
                head = self.buf[:end].decode("utf-8", "replace")
                length = 0
                for line in head.split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() in ("content-length", "l"):
                        length = int(value.strip())
                total = end + 4 + length
                if len(self.buf) >= total:
                    raw, self.buf = self.buf[:total], self.buf[total:]
                    self.trace.log("received", raw)
                    return raw.decode("utf-8", "replace")
            self.read_more()


def headers(msg, name):
    out = []
    compact = {"call-id": "i", "from": "f", "to": "t", "via": "v", "contact": "m", "cseq": None}
    names = {name.lower()}
    if compact.get(name.lower()):
        names.add(compact[name.lower()])
    for line in msg.split("\r\n\r\n")[0].split("\r\n")[1:]:
        n, _, v = line.partition(":")
        if n.strip().lower() in names:
            out.append(v.strip())
    return out


def header(msg, name):
    h = headers(msg, name)
    return h[0] if h else ""


def status(msg):
    first = msg.split("\r\n", 1)[0]
    if first.startswith("SIP/2.0 "):
        return int(first.split()[1])
    return None


def uri_of(value):
    if "<" in value:
        return value.split("<", 1)[1].split(">", 1)[0]
    return value.split(";", 1)[0]


def sdp(user, ip, port):
    return (
        f"v=0\r\no={user} 4400111 4400111 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"
        f"a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )


def client_context(args):
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.ca)
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    return ctx


def connect(args):
    host, port = args.connect.rsplit(":", 1)
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    raw.bind((args.bind, 0))
    raw.settimeout(args.timeout)
    raw.connect((host, int(port)))
    return client_context(args).wrap_socket(raw, server_hostname=args.server_name)


def run_uac(args):
    trace = Trace(args.trace)
    tls = connect(args)
    conn = Conn(tls, trace)
    local_ip, local_port = tls.getsockname()[:2]
    for n in range(args.calls):
        call_id = f"tls-uac-{random.getrandbits(48):x}-{n}@{local_ip}"
        tag = f"uactag{random.getrandbits(32):x}"
        body = sdp("pbx-tls-internal", local_ip, args.media_port)

        def request(method, ruri, cseq, to, extra="", body=""):
            branch = f"z9hG4bKtlsuac{random.getrandbits(48):x}"
            msg = (
                f"{method} {ruri} SIP/2.0\r\n"
                f"Via: SIP/2.0/TLS {local_ip}:{local_port};branch={branch};rport\r\n"
                f"Max-Forwards: 70\r\n"
                f"From: \"Alice\" <sips:alice@{local_ip}>;tag={tag}\r\n"
                f"To: {to}\r\n"
                f"Call-ID: {call_id}\r\n"
                f"CSeq: {cseq} {method}\r\n"
                f"Contact: <sips:alice@{local_ip}:{local_port}>\r\n"
                f"User-Agent: PBX-TLS/1.0\r\n"
                f"{extra}"
            )
            if body:
                msg += f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}"
            else:
                msg += "Content-Length: 0\r\n\r\n"
            conn.send(msg)

        to = f"<sips:{args.to}@{args.connect}>"
        request("INVITE", f"sips:{args.to}@{args.connect}", 1, to, "X-Pbx-Secret: tls-internal\r\n", body)
        seen = []
        final = None
        while final is None:
            m = conn.next()
            if m in ("PING", "PONG"):
                continue
            code = status(m)
            if code is None:
                answer_request(conn, m, None)
                continue
            seen.append(code)
            if code >= 200:
                final = m
        if status(final) != 200:
            print(f"uac: call {n}: final {status(final)}, wanted 200", file=sys.stderr)
            return 1
        if 180 not in seen:
            print(f"uac: call {n}: no 180 before 200 (saw {seen})", file=sys.stderr)
            return 1
        if "m=audio" not in final:
            print(f"uac: call {n}: 200 without SDP", file=sys.stderr)
            return 1
        to = header(final, "To")
        target = uri_of(header(final, "Contact"))
        request("ACK", target, 1, to)
        time.sleep(args.hold)
        request("BYE", target, 2, to)
        while True:
            m = conn.next()
            if m in ("PING", "PONG"):
                continue
            code = status(m)
            if code is None:
                answer_request(conn, m, None)
                continue
            if code >= 200 and "BYE" in header(m, "CSeq"):
                if code != 200:
                    print(f"uac: call {n}: BYE got {code}", file=sys.stderr)
                    return 1
                break
    tls.close()
    print(f"uac: {args.calls} calls ok")
    return 0


def response(req, code, reason, to_tag=None, contact=None, extra="", body=""):
    lines = [f"SIP/2.0 {code} {reason}"]
    for v in headers(req, "Via"):
        lines.append(f"Via: {v}")
    lines.append(f"From: {header(req, 'From')}")
    to = header(req, "To")
    if to_tag and ";tag=" not in to:
        to += f";tag={to_tag}"
    lines.append(f"To: {to}")
    lines.append(f"Call-ID: {header(req, 'Call-ID')}")
    lines.append(f"CSeq: {header(req, 'CSeq')}")
    if contact:
        lines.append(f"Contact: {contact}")
    msg = "\r\n".join(lines) + "\r\n" + extra
    if body:
        msg += f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    else:
        msg += "Content-Length: 0\r\n\r\n"
    return msg


def answer_request(conn, req, uas):
    """Answer a request; returns the method."""
    method = req.split(" ", 1)[0]
    if method == "ACK":
        return method
    if method == "INVITE" and uas is not None:
        ip, port = uas["local"]
        tag = f"uastag{random.getrandbits(32):x}"
        contact = f"<sips:callee@{ip}:{port}>"
        extra = "Server: Carrier-TLS/2.0\r\nX-Carrier-Trace: carrier-tls-route\r\n"
        conn.send(response(req, 100, "Trying"))
        conn.send(response(req, 180, "Ringing", tag, contact, extra))
        time.sleep(0.1)
        conn.send(response(req, 200, "OK", tag, contact, extra, sdp("carrier-tls-internal", ip, uas["media_port"])))
        return method
    conn.send(response(req, 200, "OK"))
    return method


def run_uas(args):
    trace = Trace(args.trace)
    host, port = args.listen.rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    if args.ca:
        ctx.load_verify_locations(args.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    state = {"connections": 0, "handshakes": 0, "sni": [], "byes": 0, "invites": 0,
             "client_certs": 0}
    lock = threading.Lock()
    done = threading.Event()

    def on_sni(_sock, name, _ctx):
        with lock:
            state["sni"].append(name)

    ctx.sni_callback = on_sni
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, int(port)))
    srv.listen(16)
    srv.settimeout(0.2)
    uas = {"local": (host, int(port)), "media_port": args.media_port}

    def serve(raw):
        try:
            raw.settimeout(args.timeout)
            tls = ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as e:
            print(f"uas: handshake failed: {e}", file=sys.stderr)
            return
        with lock:
            state["handshakes"] += 1
            if tls.getpeercert():
                state["client_certs"] += 1
        conn = Conn(tls, trace)
        try:
            while not done.is_set():
                m = conn.next()
                if m == "PING":
                    tls.sendall(b"\r\n")
                    continue
                if m == "PONG" or status(m) is not None:
                    continue
                method = answer_request(conn, m, uas)
                with lock:
                    if method == "INVITE":
                        state["invites"] += 1
                    if method == "BYE":
                        state["byes"] += 1
                        if state["byes"] >= args.calls:
                            done.set()
        except (EOFError, OSError, ssl.SSLError):
            pass

    deadline = time.time() + args.timeout
    if args.ready:
        open(args.ready, "w").close()
    while not done.is_set() and time.time() < deadline:
        try:
            raw, _ = srv.accept()
        except socket.timeout:
            continue
        with lock:
            state["connections"] += 1
        threading.Thread(target=serve, args=(raw,), daemon=True).start()
    # Let the last 200 to BYE leave before the report.
    time.sleep(0.2)
    if args.report:
        with open(args.report, "w") as f:
            json.dump(state, f)
    print(f"uas: {json.dumps(state)}")
    return 0 if state["byes"] >= args.calls else 1


def run_ping(args):
    tls = connect(args)
    tls.sendall(b"\r\n\r\n")
    got = b""
    while len(got) < 2:
        chunk = tls.recv(16)
        if not chunk:
            break
        got += chunk
    tls.close()
    if got != b"\r\n":
        print(f"ping: wanted a CRLF pong, got {got!r}", file=sys.stderr)
        return 1
    print("ping: pong")
    return 0


def run_refused(args):
    trace = Trace(args.trace)
    try:
        tls = connect(args)
        conn = Conn(tls, trace)
        ip, port = tls.getsockname()[:2]
        conn.send(
            f"OPTIONS sips:{args.to}@{args.connect} SIP/2.0\r\n"
            f"Via: SIP/2.0/TLS {ip}:{port};branch=z9hG4bKrefused1;rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sips:probe@{ip}>;tag=r1\r\n"
            f"To: <sips:{args.to}@{args.connect}>\r\nCall-ID: refused-1\r\n"
            f"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
        m = conn.next()
    except (ssl.SSLError, EOFError, ConnectionError, OSError) as e:
        print(f"refused: {type(e).__name__}: {e}")
        return 0
    print(f"refused: got an answer instead: {m.splitlines()[0]!r}", file=sys.stderr)
    return 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["uac", "uas", "ping", "refused"])
    p.add_argument("--connect", help="host:port of veil's TLS listener")
    p.add_argument("--bind", default="127.0.0.1", help="source IP for client connections")
    p.add_argument("--listen", help="host:port to accept TLS on (uas)")
    p.add_argument("--ca", help="CA file: server check (client modes), client check (uas)")
    p.add_argument("--server-name", help="SNI and name to verify (client modes)")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--to", default="4930123456")
    p.add_argument("--calls", type=int, default=1)
    p.add_argument("--hold", type=float, default=0.5)
    p.add_argument("--media-port", type=int, default=40000)
    p.add_argument("--trace")
    p.add_argument("--report")
    p.add_argument("--ready", help="file created once the uas listens")
    p.add_argument("--timeout", type=float, default=20)
    args = p.parse_args()
    return {"uac": run_uac, "uas": run_uas, "ping": run_ping, "refused": run_refused}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
