#!/usr/bin/env python3
"""RTCP SDES through veil with one SRTP side, on libsrtp (pylibsrtp), independent of veil's
Rust SRTP code. Usage:
  srtcp_sdes_peer.py SUITE KEY_IN KEY_OUT VEIL_SRTP_RTCP VEIL_PLAIN_RTCP SRTP_RTCP PLAIN_RTCP
KEY_IN is what the SRTP side encrypts with, KEY_OUT what veil encrypts with towards it
(SDES inline base64); ports are RTCP ports, the last two `ip:port` where the sides bind;
veil is at 127.0.0.1. Each side sends one compound SR + SDES(CNAME, NAME, TOOL) naming
itself (byte for byte what tests/media_rtcp.rs `phone_rtcp` builds); prints a JSON object with the plain RTCP each side got, in hex (SRTCP decrypted
and authenticated by libsrtp first).
"""

import base64
import json
import socket
import struct
import sys

from pylibsrtp import Policy, Session

PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}
VEIL = "127.0.0.1"


def sr_sdes(ssrc, cname):
    sr = struct.pack("!BBHIIIIII", 0x80, 200, 6, ssrc, 0xE83A1B22, 0x4D2F1A9B, 8000, 50, 8000)
    chunk = struct.pack("!I", ssrc)
    for kind, text in ((1, cname), (2, b"Alice Example"), (6, b"Acme Phone 5.1.2")):
        chunk += bytes([kind, len(text)]) + text
    chunk += b"\0" * (4 - len(chunk) % 4)
    return sr + struct.pack("!BBH", 0x81, 202, len(chunk) // 4) + chunk


def sock(addr):
    ip, port = addr.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, int(port)))
    s.settimeout(2.0)
    return s


def main():
    suite, key_in, key_out, veil_srtp, veil_plain, srtp_addr, plain_addr = sys.argv[1:8]
    profile = PROFILES[suite]
    tx = Session(policy=Policy(key=base64.b64decode(key_in), ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile))
    rx = Session(policy=Policy(key=base64.b64decode(key_out), ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=profile))
    srtp, plain = sock(srtp_addr), sock(plain_addr)
    out = {}
    srtp.sendto(tx.protect_rtcp(sr_sdes(0x5E1F, b"sip:pbx@" + srtp_addr.split(":")[0].encode())), (VEIL, int(veil_srtp)))
    out["to_plain"] = plain.recv(4096).hex()
    plain.sendto(sr_sdes(0xCA11, b"sip:carrier@" + plain_addr.split(":")[0].encode()), (VEIL, int(veil_plain)))
    out["to_srtp"] = rx.unprotect_rtcp(srtp.recv(4096)).hex()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
