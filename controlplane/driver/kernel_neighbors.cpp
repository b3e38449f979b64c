// rtnetlink neighbour dump and NTF_USE probes (see kernel_neighbors.h).
#include "driver/kernel_neighbors.h"

#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace sluice::driver {
namespace {

std::string errno_text(int err) { return std::strerror(err < 0 ? -err : err); }

constexpr uint16_t kUsable = NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT | NUD_NOARP;
// A dump answer of a few hundred entries; larger tables arrive in more reads.
constexpr size_t kReceiveBuffer = 64 * 1024;
// Bounds one dump: a table of this many reads is not one we would finish.
constexpr int kMaxReads = 4096;

}  // namespace

bool KernelNeighbor::fresh() const { return (state & (NUD_REACHABLE | NUD_PERMANENT | NUD_NOARP)) != 0; }

Result<KernelNeighbors> KernelNeighbors::open()
{
    const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) return make_error("netlink socket: " + errno_text(errno));
    sockaddr_nl local{};
    local.nl_family = AF_NETLINK;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
        const int err = errno;
        ::close(fd);
        return make_error("netlink bind: " + errno_text(err));
    }
    timeval tv{1, 0};  // a kernel answer never takes this long; never block the control loop longer
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return KernelNeighbors(fd);
}

KernelNeighbors::KernelNeighbors(KernelNeighbors&& other) noexcept : fd_(other.fd_), seq_(other.seq_)
{
    other.fd_ = -1;
}

KernelNeighbors& KernelNeighbors::operator=(KernelNeighbors&& other) noexcept
{
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = other.fd_;
        seq_ = other.seq_;
        other.fd_ = -1;
    }
    return *this;
}

KernelNeighbors::~KernelNeighbors()
{
    if (fd_ >= 0) ::close(fd_);
}

Result<std::map<model::IpAddress, KernelNeighbor>> KernelNeighbors::read(const std::set<uint32_t>& ifindexes)
{
    struct {
        nlmsghdr nh;
        ndmsg ndm;
    } req{};
    req.nh.nlmsg_len = sizeof req;
    req.nh.nlmsg_type = RTM_GETNEIGH;
    req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.nh.nlmsg_seq = ++seq_;
    req.ndm.ndm_family = AF_UNSPEC;
    if (::send(fd_, &req, sizeof req, 0) < 0) return make_error("RTM_GETNEIGH: " + errno_text(errno));

    std::map<model::IpAddress, KernelNeighbor> out;
    std::map<model::IpAddress, size_t> rank;  // position of the entry's ifindex in `ifindexes`
    std::vector<char> buf(kReceiveBuffer);
    for (int reads = 0; reads < kMaxReads; ++reads) {
        const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return make_error("RTM_GETNEIGH answer: " + errno_text(errno));
        }
        int len = static_cast<int>(n);
        for (auto* nh = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(nh, len); nh = NLMSG_NEXT(nh, len)) {
            if (nh->nlmsg_seq != req.nh.nlmsg_seq) continue;  // a late answer to an earlier request
            if (nh->nlmsg_type == NLMSG_DONE) return out;
            if (nh->nlmsg_type == NLMSG_ERROR) {
                const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(nh));
                return make_error("RTM_GETNEIGH: " + errno_text(e->error));
            }
            if (nh->nlmsg_type != RTM_NEWNEIGH) continue;
            const auto* ndm = static_cast<const ndmsg*>(NLMSG_DATA(nh));
            const auto where = ifindexes.find(static_cast<uint32_t>(ndm->ndm_ifindex));
            if (where == ifindexes.end() || (ndm->ndm_state & kUsable) == 0) continue;
            if (ndm->ndm_family != AF_INET && ndm->ndm_family != AF_INET6) continue;
            const rtattr* dst = nullptr;
            const rtattr* lladdr = nullptr;
            int alen = static_cast<int>(NLMSG_PAYLOAD(nh, sizeof(ndmsg)));
            for (auto* a = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(NLMSG_DATA(nh)) + NLMSG_ALIGN(sizeof(ndmsg)));
                 RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
                if (a->rta_type == NDA_DST) dst = a;
                if (a->rta_type == NDA_LLADDR) lladdr = a;
            }
            const size_t want = ndm->ndm_family == AF_INET ? 4 : 16;
            if (dst == nullptr || lladdr == nullptr || RTA_PAYLOAD(dst) != want || RTA_PAYLOAD(lladdr) != 6) continue;
            model::IpAddress ip;
            ip.family = ndm->ndm_family == AF_INET ? model::IpFamily::kIpv4 : model::IpFamily::kIpv6;
            std::memcpy(ip.bytes.data(), RTA_DATA(dst), want);
            KernelNeighbor entry;
            std::memcpy(entry.mac.bytes.data(), RTA_DATA(lladdr), 6);
            entry.ifindex = static_cast<uint32_t>(ndm->ndm_ifindex);
            entry.state = ndm->ndm_state;
            const size_t r = static_cast<size_t>(std::distance(ifindexes.begin(), where));
            if (auto it = rank.find(ip); it != rank.end() && it->second <= r) continue;
            rank[ip] = r;
            out[ip] = entry;
        }
    }
    return make_error("RTM_GETNEIGH: answer did not end after " + std::to_string(kMaxReads) + " reads");
}

Result<void> KernelNeighbors::request(void* msg, uint32_t len)
{
    auto* nh = static_cast<nlmsghdr*>(msg);
    nh->nlmsg_seq = ++seq_;
    if (::send(fd_, msg, len, 0) < 0) return make_error(errno_text(errno));
    std::vector<char> buf(4096);
    for (int reads = 0; reads < 16; ++reads) {
        const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return make_error(errno_text(errno));
        }
        int left = static_cast<int>(n);
        for (auto* r = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(r, left); r = NLMSG_NEXT(r, left)) {
            if (r->nlmsg_seq != nh->nlmsg_seq || r->nlmsg_type != NLMSG_ERROR) continue;
            const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(r));
            if (e->error != 0) return make_error(errno_text(e->error));
            return {};
        }
    }
    return make_error("no acknowledgement");
}

Result<void> KernelNeighbors::probe(const model::IpAddress& address, uint32_t ifindex)
{
    struct {
        nlmsghdr nh;
        ndmsg ndm;
        char attrs[RTA_SPACE(16)];
    } req{};
    const size_t alen = address.is_ipv4() ? 4 : 16;
    req.nh.nlmsg_type = RTM_NEWNEIGH;
    req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE;
    req.ndm.ndm_family = address.is_ipv4() ? AF_INET : AF_INET6;
    req.ndm.ndm_ifindex = static_cast<int>(ifindex);
    req.ndm.ndm_flags = NTF_USE;
    auto* a = reinterpret_cast<rtattr*>(req.attrs);
    a->rta_type = NDA_DST;
    a->rta_len = static_cast<unsigned short>(RTA_LENGTH(alen));
    std::memcpy(RTA_DATA(a), address.bytes.data(), alen);
    req.nh.nlmsg_len = static_cast<uint32_t>(NLMSG_ALIGN(sizeof(nlmsghdr) + sizeof(ndmsg)) + RTA_SPACE(alen));
    if (auto r = request(&req, req.nh.nlmsg_len); !r)
        return make_error("resolving " + address.to_string() + " (RTM_NEWNEIGH NTF_USE): " + r.error());
    return {};
}

}  // namespace sluice::driver
