//! SDP bodies seen in the wild (addresses changed to documentation/private ranges), shared
//! by the tests of every SDP module.

/// SIPp's built-in UAC offer (`[local_ip]`/`[media_port]` filled in).
pub const SIPP_DEFAULT: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 192.168.50.7\r\n\
s=-\r\n\
c=IN IP4 192.168.50.7\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

/// A desk phone / softphone offer with ICE and a product name in `s=`.
pub const PHONE_ICE: &str = "v=0\r\n\
o=- 3912345678 3912345678 IN IP4 192.168.1.20\r\n\
s=Acme Phone 5.1\r\n\
c=IN IP4 192.168.1.20\r\n\
t=0 0\r\n\
a=ice-options:trickle\r\n\
a=ice-lite\r\n\
m=audio 4002 RTP/AVP 9 0 8 101\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
a=ice-ufrag:Fz9q\r\n\
a=ice-pwd:abcdefabcdefabcdefabcdef\r\n\
a=candidate:1 1 UDP 2130706431 192.168.1.20 4002 typ host\r\n\
a=candidate:2 1 UDP 1694498815 198.51.100.33 61002 typ srflx raddr 192.168.1.20 rport 4002\r\n\
a=candidate:1 2 UDP 2130706430 192.168.1.20 4003 typ host\r\n\
a=remote-candidates:1 198.51.100.77 62000\r\n\
a=end-of-candidates\r\n\
a=rtcp:4003 IN IP4 192.168.1.20\r\n\
a=sendrecv\r\n\
a=x-acme-feature:on\r\n";

pub const IPV6: &str = "v=0\r\n\
o=bob 2808844564 2808844564 IN IP6 2001:db8::20\r\n\
s=-\r\n\
c=IN IP6 2001:db8::20\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

/// Audio and video, each with its own media-level `c=` and no session-level one.
pub const TWO_STREAMS: &str = "v=0\r\n\
o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5\r\n\
s=SDP Seminar\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\n\
c=IN IP4 10.47.16.5\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
m=video 51372 RTP/AVP 99\r\n\
c=IN IP4 10.47.16.6\r\n\
a=rtpmap:99 H264/90000\r\n";

/// An answer rejecting video with port 0.
pub const PORT_ZERO: &str = "v=0\r\n\
o=- 1 2 IN IP4 172.16.0.9\r\n\
s=-\r\n\
c=IN IP4 172.16.0.9\r\n\
t=0 0\r\n\
m=audio 20000 RTP/AVP 8\r\n\
a=rtpmap:8 PCMA/8000\r\n\
m=video 0 RTP/AVP 31\r\n";

/// Old-style hold (RFC 2543): unspecified address plus `a=sendonly`.
pub const HOLD: &str = "v=0\r\n\
o=- 77 78 IN IP4 172.16.0.10\r\n\
s=-\r\n\
c=IN IP4 0.0.0.0\r\n\
t=0 0\r\n\
m=audio 16384 RTP/AVP 0\r\n\
a=sendonly\r\n";

/// RFC 3605's example: RTCP on an explicit port and address.
pub const RTCP_ADDR: &str = "v=0\r\n\
o=- 5 5 IN IP4 10.9.8.7\r\n\
s=-\r\n\
c=IN IP4 10.9.8.7\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0\r\n\
a=rtcp:53020 IN IP4 126.16.64.4\r\n";

/// RFC 5761 RTP/RTCP multiplexing.
pub const RTCP_MUX: &str = "v=0\r\n\
o=- 6 6 IN IP4 10.9.8.6\r\n\
s=-\r\n\
c=IN IP4 10.9.8.6\r\n\
t=0 0\r\n\
m=audio 38000 RTP/AVP 111\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtcp:38000\r\n\
a=rtcp-mux\r\n";

/// Names instead of addresses in `o=` and `c=` (allowed by RFC 8866; veil does not
/// resolve them).
pub const FQDN: &str = "v=0\r\n\
o=alice 10 10 IN IP4 pc33.atlanta.example.com\r\n\
s=-\r\n\
c=IN IP4 media.atlanta.example.com\r\n\
t=0 0\r\n\
m=audio 31000 RTP/AVP 0\r\n";

pub const ALL: [&str; 9] = [
    SIPP_DEFAULT,
    PHONE_ICE,
    IPV6,
    TWO_STREAMS,
    PORT_ZERO,
    HOLD,
    RTCP_ADDR,
    RTCP_MUX,
    FQDN,
];
