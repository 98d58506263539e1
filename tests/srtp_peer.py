#!/usr/bin/env python3
"""An SRTP peer built on libsrtp (pylibsrtp), independent of veil's Rust SRTP code.

Side A of a veil stream speaks SRTP (this script, with libsrtp), side B plain RTP (this
script, plain UDP). Usage:
  srtp_peer.py SUITE KEY_IN KEY_OUT VEIL_A_PORT VEIL_B_PORT A_PORT B_PORT [A_IP B_IP]
KEY_IN is what side A encrypts with (veil's inbound key for A), KEY_OUT what veil
encrypts with towards A, each in hex or as `b64:` and the SDES inline base64. A_IP and
B_IP are where the two sides bind (default 127.0.0.1; veil is always at 127.0.0.1).
Prints one JSON object with what arrived where.
"""

import base64
import json
import os
import socket
import struct
import sys

from pylibsrtp import Policy, Session

PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
    "AEAD_AES_128_GCM": Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    "AEAD_AES_256_GCM": Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
}
HOST = "127.0.0.1"
N = 50


def rtp(ssrc, seq, payload):
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, ssrc) + payload


def rtcp_rr(ssrc):
    return struct.pack("!BBHI", 0x80, 201, 1, ssrc)


def sock(port, ip=HOST):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, port))
    s.settimeout(0.5)
    return s


def drain(s):
    got = []
    while True:
        try:
            got.append(s.recv(4096))
        except socket.timeout:
            return got


def key(text):
    if text.startswith("b64:"):
        return base64.b64decode(text[4:])
    return bytes.fromhex(text)


def session(profile, key, direction):
    return Session(policy=Policy(key=key, ssrc_type=direction, srtp_profile=profile))


def main():
    suite, key_in, key_out, veil_a, veil_b, a_port, b_port = sys.argv[1:8]
    profile = PROFILES[suite]
    key_in, key_out = key(key_in), key(key_out)
    veil_a, veil_b, a_port, b_port = map(int, (veil_a, veil_b, a_port, b_port))
    a_ip, b_ip = (sys.argv[8], sys.argv[9]) if len(sys.argv) > 9 else (HOST, HOST)
    a, a_rtcp = sock(a_port, a_ip), sock(a_port + 1, a_ip)
    b, b_rtcp = sock(b_port, b_ip), sock(b_port + 1, b_ip)
    tx = session(profile, key_in, Policy.SSRC_ANY_OUTBOUND)
    rx = session(profile, key_out, Policy.SSRC_ANY_INBOUND)
    out = {}

    # 1. SRTP from A -> plain RTP at B, byte for byte.
    sent = [rtp(0x1234, seq, os.urandom(160)) for seq in range(1, N + 1)]
    for p in sent:
        a.sendto(tx.protect(p), (HOST, veil_a))
    got = drain(b)
    out["a_to_b_sent"] = N
    out["a_to_b_exact"] = sum(1 for p in got if p in sent)
    out["a_to_b_received"] = len(got)

    # 2. Plain RTP from B -> SRTP at A that libsrtp authenticates and decrypts.
    sent = [rtp(0x5678, seq, os.urandom(160)) for seq in range(1, N + 1)]
    for p in sent:
        b.sendto(p, (HOST, veil_b))
    ok = 0
    for p in drain(a):
        try:
            if rx.unprotect(p) in sent:
                ok += 1
        except Exception:
            pass
    out["b_to_a_exact"] = ok

    # 3. SRTCP from A -> RTCP at B; RTCP from B -> SRTCP at A.
    a_rtcp.sendto(tx.protect_rtcp(rtcp_rr(0x1234)), (HOST, veil_a + 1))
    out["rtcp_a_to_b"] = sum(1 for p in drain(b_rtcp) if p == rtcp_rr(0x1234))
    b_rtcp.sendto(rtcp_rr(0x5678), (HOST, veil_b + 1))
    ok = 0
    for p in drain(a_rtcp):
        try:
            if rx.unprotect_rtcp(p) == rtcp_rr(0x5678):
                ok += 1
        except Exception:
            pass
    out["rtcp_b_to_a"] = ok

    # 4. What veil must drop: a wrong key, forged tags, replays, unencrypted SRTCP.
    wrong = session(profile, bytes(len(key_in)), Policy.SSRC_ANY_OUTBOUND)
    bad = [wrong.protect(rtp(0x1234, seq, b"x" * 160)) for seq in range(100, 110)]
    for seq in range(110, 120):
        p = bytearray(tx.protect(rtp(0x1234, seq, b"y" * 160)))
        p[-1] ^= 0x01
        bad.append(bytes(p))
    replayed = tx.protect(rtp(0x1234, 200, b"z" * 160))
    a.sendto(replayed, (HOST, veil_a))
    bad += [replayed] * 5
    for p in bad:
        a.sendto(p, (HOST, veil_a))
    forged_rtcp = rtcp_rr(0x1234) + struct.pack("!I", 7) + bytes(16)
    a_rtcp.sendto(forged_rtcp, (HOST, veil_a + 1))
    got = drain(b) + drain(b_rtcp)
    out["bad_sent"] = len(bad) + 1  # and the forged SRTCP
    out["bad_leaked"] = len([p for p in got if p[12:13] in (b"x", b"y") or p == rtcp_rr(0x1234)])
    out["replay_copies_out"] = len([p for p in got if p[12:13] == b"z"])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
