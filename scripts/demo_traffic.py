#!/usr/bin/env python3
"""The demo's traffic source: raw Ethernet frames from two veth ends, for a bounded time at a
bounded rate, toward the appliance's two ports.

  firewall port (SRC_FW -> twin MAC FW_MAC, 198.18.1.2): UDP to port 9 (the firewall drops it),
      UDP to port 10 and ICMP echo (passed to the appliance host's stack, which answers)
  load balancer port (SRC_LB -> LB_MAC): UDP and TCP to the VIP 198.18.10.1 from 2,000 source
      ports (encapsulated in IPIP and sent back out), and UDP to the twin (passed)

usage: demo_traffic.py SRC_FW FW_MAC SRC_LB LB_MAC SECONDS PPS
"""
import socket
import struct
import sys
import time
from xdprt_frames import csum


def frame(dst_mac, src_mac, src_ip, dst_ip, proto, l4):
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, 0, 64, proto, 0,
                     socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return dst_mac + src_mac + b"\x08\x00" + ip + l4


def udp(sport, dport, payload=b"xdprt demo"):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload  # checksum 0: none


def tcp_syn(sport, dport):
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x02, 8192, 0, 0)


def icmp_echo(seq):
    m = struct.pack("!BBHHH", 8, 0, 0, 0x7864, seq) + b"demo" * 8
    return m[:2] + struct.pack("!H", csum(m)) + m[4:]


def mac(text):
    return bytes.fromhex(text.replace(":", ""))


def main():
    src_fw, fw_mac, src_lb, lb_mac, seconds, pps = sys.argv[1:7]
    seconds, pps = float(seconds), int(pps)
    fw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    fw.bind((src_fw, 0))
    lb = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    lb.bind((src_lb, 0))
    my_fw, my_lb = fw.getsockname()[4], lb.getsockname()[4]
    fw_mac, lb_mac = mac(fw_mac), mac(lb_mac)
    # A fixed cycle of 20 frames: 6 dropped, 5 passed (firewall), 8 balanced, 1 passed (LB port).
    cycle = []
    for k in range(6):
        cycle.append((fw, frame(fw_mac, my_fw, "198.18.1.1", "198.18.1.2", 17, udp(30000 + k, 9))))
    for k in range(4):
        cycle.append((fw, frame(fw_mac, my_fw, "198.18.1.1", "198.18.1.2", 17, udp(31000 + k, 10))))
    cycle.append((fw, None))  # an ICMP echo, numbered as it goes
    for k in range(8):
        sport = 20000 + (k * 251) % 2000
        l4 = udp(sport, 53) if k % 2 else tcp_syn(sport, 80)
        cycle.append((lb, frame(lb_mac, my_lb, "198.18.2.1", "198.18.10.1", 17 if k % 2 else 6, l4)))
    cycle.append((lb, frame(lb_mac, my_lb, "198.18.2.1", "198.18.2.2", 17, udp(32000, 7))))
    start = time.monotonic()
    sent = seq = 0
    batch = max(1, pps // 100)  # sends in batches 10 ms apart
    while time.monotonic() - start < seconds:
        t0 = time.monotonic()
        for _ in range(batch):
            sock, f = cycle[sent % len(cycle)]
            if f is None:
                seq = (seq + 1) & 0xFFFF
                f = frame(fw_mac, my_fw, "198.18.1.1", "198.18.1.2", 1, icmp_echo(seq))
            try:
                sock.send(f)
            except OSError:
                pass  # a full queue: the next batch goes on
            sent += 1
        time.sleep(max(0.0, 0.01 - (time.monotonic() - t0)))
    print(f"traffic source: {sent} frames in {time.monotonic() - start:.1f} s")


if __name__ == "__main__":
    main()
