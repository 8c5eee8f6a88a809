// pktgen: a bounded traffic source for bench/e2e_veth.sh. Sends 60-byte Ethernet/IPv4/UDP frames
// (198.18.0.1 -> 198.18.0.2, RFC 2544's range, UDP port 9, source ports cycling over 1,024
// flows) out of one interface through a packet socket, in batches of 64 (sendmmsg, qdisc
// bypassed), for a given number of seconds, then prints how many it sent.
//
//   pktgen IFACE SECONDS [DST_MAC]
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: pktgen IFACE SECONDS [DST_MAC]\n");
        return 1;
    }
    const unsigned ifindex = if_nametoindex(argv[1]);
    const double seconds = std::atof(argv[2]);
    if (!ifindex || seconds <= 0 || seconds > 600) {
        std::fprintf(stderr, "pktgen: no interface '%s', or SECONDS not in (0, 600]\n", argv[1]);
        return 1;
    }
    int fd = socket(AF_PACKET, SOCK_RAW, 0);
    if (fd < 0) {
        std::perror("pktgen: socket");
        return 1;
    }
    int one = 1;
    setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = int(ifindex);
    to.sll_halen = ETH_ALEN;

    constexpr unsigned batch = 64, flows = 1024;
    std::array<uint8_t, 6> dst{2, 0, 0, 0, 0, 2};
    if (argc > 3) std::sscanf(argv[3], "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &dst[0], &dst[1], &dst[2], &dst[3], &dst[4], &dst[5]);
    std::vector<std::array<uint8_t, 60>> frames(flows);
    for (unsigned k = 0; k < flows; ++k) {
        auto& f = frames[k];
        f.fill(0);
        std::memcpy(f.data(), dst.data(), 6);
        const uint8_t head[] = {2, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45, 0, 0, 46, 0, 0, 0, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2};
        std::memcpy(f.data() + 6, head, sizeof head);
        uint32_t sum = 0;
        for (int i = 14; i < 34; i += 2) sum += uint32_t(f[size_t(i)] << 8 | f[size_t(i + 1)]);
        while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
        f[24] = uint8_t(~sum >> 8);
        f[25] = uint8_t(~sum);
        uint16_t sport = uint16_t(10000 + k);
        f[34] = uint8_t(sport >> 8);
        f[35] = uint8_t(sport);
        f[37] = 9;   // UDP port 9
        f[39] = 26;  // UDP length
    }
    std::array<mmsghdr, batch> msgs{};
    std::array<iovec, batch> iov{};
    uint64_t sent = 0;
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    for (unsigned next = 0; std::chrono::steady_clock::now() < end;) {
        for (unsigned i = 0; i < batch; ++i) {
            iov[i] = {frames[(next + i) % flows].data(), 60};
            msgs[i].msg_hdr = {};
            msgs[i].msg_hdr.msg_name = &to;
            msgs[i].msg_hdr.msg_namelen = sizeof to;
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int n = sendmmsg(fd, msgs.data(), batch, 0);
        if (n > 0) {
            sent += unsigned(n);
            next += unsigned(n);
        }
    }
    std::printf("%lu\n", static_cast<unsigned long>(sent));
    close(fd);
    return 0;
}
