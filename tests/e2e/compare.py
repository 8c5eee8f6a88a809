#!/usr/bin/env python3
"""Sends a mixed set of frames, one at a time, into two veths: one whose peer runs a program under
the kernel's XDP, one whose peer is an appliance port running the same program. For each frame it
records what left back through the veth (XDP_TX) and what reached the kernel stack (XDP_PASS: a
packet socket on the kernel's veth, and on the appliance port's twin), and requires the same on
both sides, byte for byte.

usage: compare.py GEN_NS KERNEL_NS APP_NS GEN_TO_KERNEL KERNEL_DEV GEN_TO_APP TWIN_DEV

Frames use RFC 2544's 198.18.0.0/15 and RFC 3849's 2001:db8::/32; they stay in the test's own
namespaces (no addresses are configured there, nothing routes them anywhere).
"""
import ctypes
import os
import select
import socket
import struct
import sys
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from xdprt_frames import csum  # noqa: E402

CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
libc = ctypes.CDLL(None, use_errno=True)


def socket_in(ns, dev):
    """A raw packet socket bound to `dev` inside network namespace `ns` (it stays there)."""
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((dev, 0))
        s.setblocking(False)
        return s
    finally:
        libc.setns(home, CLONE_NEWNET)
        os.close(home)
        os.close(target)


MAC_DST = bytes.fromhex("020000000002")
MAC_SRC = bytes.fromhex("020000000001")
V4_SRC, V4_DST = bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2])
V6_SRC = bytes.fromhex("20010db8000000000000000000000001")
V6_DST = bytes.fromhex("20010db8000000000000000000000002")


def eth(ethertype, payload, vlan=None):
    head = MAC_DST + MAC_SRC
    if vlan is not None:
        head += struct.pack("!HH", 0x8100, vlan)
    return head + struct.pack("!H", ethertype) + payload


def ipv4(proto, payload, ttl=64, options=b"", frag=0, ident=1, total=None, bad_csum=False):
    ihl = 5 + len(options) // 4
    length = total if total is not None else ihl * 4 + len(payload)
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, length, ident, frag, ttl, proto, 0, V4_SRC, V4_DST) + options
    c = csum(h) ^ (0x1234 if bad_csum else 0)
    return h[:10] + struct.pack("!H", c) + h[12:] + payload


def l4_sum(proto, src, dst, seg):
    pseudo = src + dst + struct.pack("!BBH", 0, proto, len(seg)) if len(src) == 4 else \
        src + dst + struct.pack("!IxxxB", len(seg), proto)
    return csum(pseudo + seg)


def udp(dport, payload, src=V4_SRC, dst=V4_DST, sport=40000):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return seg[:6] + struct.pack("!H", l4_sum(17, src, dst, seg)) + seg[8:]


def tcp(dport, flags, payload=b"", src=V4_SRC, dst=V4_DST):
    seg = struct.pack("!HHIIBBHHH", 40001, dport, 1, 0, 5 << 4, flags, 8192, 0, 0) + payload
    return seg[:16] + struct.pack("!H", l4_sum(6, src, dst, seg)) + seg[18:]


def icmp_echo(payload=b"ping" * 8):
    m = struct.pack("!BBHHH", 8, 0, 0, 7, 1) + payload
    return m[:2] + struct.pack("!H", csum(m)) + m[4:]


def icmp6_echo(payload=b"ping" * 8):
    m = struct.pack("!BBHHH", 128, 0, 0, 7, 1) + payload
    return m[:2] + struct.pack("!H", l4_sum(58, V6_SRC, V6_DST, m)) + m[4:]


def ipv6(next_header, payload, hop=64):
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), next_header, hop, V6_SRC, V6_DST) + payload


def frames():
    u = udp(53, b"q" * 20)
    f = [
        ("runt_1", b"\x02"),
        ("runt_13", eth(0x0800, b"")[:13]),
        ("eth_only_ipv4", eth(0x0800, b"")),
        ("arp_request", eth(0x0806, bytes.fromhex("0001080006040001") + MAC_SRC + V4_SRC + bytes(6) + V4_DST)),
        ("lldp", eth(0x88CC, b"\x33" * 46)),
        ("ipv4_udp", eth(0x0800, ipv4(17, u))),
        ("ipv4_udp_port9", eth(0x0800, ipv4(17, udp(9, b"d" * 20)))),
        ("ipv4_udp_big", eth(0x0800, ipv4(17, udp(5000, bytes(range(256)) * 5)))),
        ("ipv4_tcp_syn", eth(0x0800, ipv4(6, tcp(80, 0x02)))),
        ("ipv4_tcp_telnet", eth(0x0800, ipv4(6, tcp(23, 0x02)))),
        ("ipv4_tcp_data", eth(0x0800, ipv4(6, tcp(80, 0x18, b"x" * 100)))),
        ("ipv4_icmp_echo", eth(0x0800, ipv4(1, icmp_echo()))),
        ("ipv4_ttl1", eth(0x0800, ipv4(17, u, ttl=1))),
        ("ipv4_bad_csum", eth(0x0800, ipv4(17, u, bad_csum=True))),
        ("ipv4_options", eth(0x0800, ipv4(17, u, options=bytes([7, 7, 4, 0, 0, 0, 0, 1])))),
        ("ipv4_frag_first", eth(0x0800, ipv4(17, u[:16], frag=0x2000, ident=9, total=36))),
        ("ipv4_frag_middle", eth(0x0800, ipv4(17, b"m" * 16, frag=0x2002, ident=9))),
        ("ipv4_truncated_header", eth(0x0800, ipv4(17, u)[:12])),
        ("ipv4_truncated_udp", eth(0x0800, ipv4(17, u)[:24])),
        ("ipv4_short_60", eth(0x0800, ipv4(17, udp(7, b"")))),
        ("ipv4_68", eth(0x0800, ipv4(17, udp(7, b"e" * 26)))),
        ("vlan_ipv4_udp", eth(0x0800, ipv4(17, u), vlan=100)),
        ("ipv6_udp", eth(0x86DD, ipv6(17, udp(53, b"q" * 20, V6_SRC, V6_DST)))),
        ("ipv6_icmp_echo", eth(0x86DD, ipv6(58, icmp6_echo()))),
        ("ipv6_hopbyhop_udp", eth(0x86DD, ipv6(0, bytes([17, 0, 1, 4, 0, 0, 0, 0]) + udp(53, b"h" * 8, V6_SRC, V6_DST)))),
        ("ipv6_frag_udp", eth(0x86DD, ipv6(44, bytes([17, 0, 0, 1, 0, 0, 0, 5]) + udp(53, b"f" * 8, V6_SRC, V6_DST)))),
        ("ipv6_truncated", eth(0x86DD, ipv6(17, udp(53, b""))[:30])),
    ]
    return f


def drain(sock):
    got = []
    while True:
        try:
            data, addr = sock.recvfrom(65536)
        except BlockingIOError:
            return got
        if addr[2] != PACKET_OUTGOING:
            got.append(data)


def main():
    gen_ns, k_ns, a_ns, gen_k, k_dev, gen_a, twin = sys.argv[1:8]
    send_k = socket_in(gen_ns, gen_k)   # sends toward the kernel's XDP, receives what it TXes
    send_a = socket_in(gen_ns, gen_a)   # the same toward the appliance
    stack_k = socket_in(k_ns, k_dev)    # what the kernel stack receives there
    stack_a = socket_in(a_ns, twin)     # what the appliance passes to its twin
    socks = [send_k, send_a, stack_k, stack_a]
    time.sleep(0.2)
    for s in socks:
        drain(s)
    mismatches = 0
    compared = 0
    for name, frame in frames():
        sent = []
        for s in (send_k, send_a):
            try:
                s.send(frame)
                sent.append(True)
            except OSError as e:
                sent.append(e.errno)
        if sent[0] is not True or sent[1] is not True:
            same = sent[0] == sent[1]
            print(f"{'ok' if same else 'MISMATCH'}: {name}: not sendable here ({sent})")
            mismatches += not same
            continue
        deadline = time.time() + 0.25
        out = [[], [], [], []]
        while time.time() < deadline:
            select.select(socks, [], [], 0.02)
            for i, s in enumerate(socks):
                out[i] += drain(s)
        kernel = {"tx": out[0], "pass": out[2]}
        appliance = {"tx": out[1], "pass": out[3]}
        compared += 1
        verdict = ", ".join(f"{k}={len(v)}" for k, v in kernel.items())
        if kernel == appliance:
            print(f"ok: {name} ({len(frame)} B): {verdict}")
        else:
            mismatches += 1
            print(f"MISMATCH: {name} ({len(frame)} B): kernel {verdict}; appliance "
                  + ", ".join(f"{k}={len(v)}" for k, v in appliance.items()))
            for k in kernel:
                for a, b in zip(kernel[k], appliance[k]):
                    if a != b:
                        print(f"  {k}: kernel   {a.hex()}\n  {k}: appliance {b.hex()}")
    print(f"{compared} frames compared, {mismatches} mismatches")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
