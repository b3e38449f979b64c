// The DNS source's worker: c-ares queries driven by poll() next to the
// stop eventfd, TTL-clamped re-resolution, keep-last-good on failure.
#include "discovery/dns_source.h"

#include <ares.h>
#include <arpa/inet.h>
#include <poll.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>
#include <mutex>

namespace sluice::discovery {

using std::chrono::milliseconds;

namespace {

constexpr int kTypeA = 1;
constexpr int kTypeAaaa = 28;
constexpr int kTypeSrv = 33;
constexpr int kClassIn = 1;

const char* type_name(int type)
{
    return type == kTypeA ? "A" : type == kTypeAaaa ? "AAAA" : "SRV";
}

struct Answer {
    std::string name;
    int type = 0;
    int status = ARES_ECANCELLED;
    std::vector<unsigned char> raw;
    bool done = false;  // the callback ran
};

void on_answer(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen)
{
    auto* answer = static_cast<Answer*>(arg);
    answer->done = true;
    answer->status = status;
    if (status == ARES_SUCCESS && abuf != nullptr && alen > 0) {
        answer->raw.assign(abuf, abuf + alen);
    }
}

// The smallest TTL of the answer-section records of `type`; c-ares's SRV
// parser drops TTLs, so this reads the message itself (RFC 1035 4.1).
std::optional<uint32_t> min_answer_ttl(const std::vector<unsigned char>& msg, int type)
{
    if (msg.size() < 12) {
        return std::nullopt;
    }
    const auto u16 = [&](size_t at) { return static_cast<unsigned>((msg[at] << 8) | msg[at + 1]); };
    const unsigned questions = u16(4);
    const unsigned answers = u16(6);
    const unsigned char* base = msg.data();
    const auto len = static_cast<long>(msg.size());
    size_t at = 12;
    const auto skip_name = [&]() -> bool {
        char* name = nullptr;
        long enclen = 0;
        if (at >= msg.size() || ares_expand_name(base + at, base, static_cast<int>(len), &name, &enclen) != ARES_SUCCESS) {
            return false;
        }
        ares_free_string(name);
        at += static_cast<size_t>(enclen);
        return true;
    };
    for (unsigned i = 0; i < questions; ++i) {
        if (!skip_name()) {
            return std::nullopt;
        }
        at += 4;
    }
    std::optional<uint32_t> best;
    for (unsigned i = 0; i < answers; ++i) {
        if (!skip_name() || at + 10 > msg.size()) {
            break;
        }
        const unsigned rtype = u16(at);
        const uint32_t ttl = (uint32_t(msg[at + 4]) << 24) | (uint32_t(msg[at + 5]) << 16) |
                             (uint32_t(msg[at + 6]) << 8) | msg[at + 7];
        if (static_cast<int>(rtype) == type) {
            best = best ? std::min(*best, ttl) : ttl;
        }
        at += 10 + u16(at + 8);
    }
    return best;
}

// One c-ares channel, driven synchronously from the worker thread.
class Channel {
public:
    ~Channel()
    {
        if (channel_ != nullptr) {
            ares_destroy(channel_);
        }
    }

    Result<void> init(const std::optional<model::Endpoint>& resolver, milliseconds timeout)
    {
        static std::once_flag once;
        std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
        ares_options options{};
        options.timeout = static_cast<int>(timeout.count());
        options.tries = 2;
        int rc = ares_init_options(&channel_, &options, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
        if (rc != ARES_SUCCESS) {
            channel_ = nullptr;
            return make_error(std::string("c-ares init: ") + ares_strerror(rc));
        }
        if (resolver) {
            rc = ares_set_servers_ports_csv(channel_, resolver->to_string().c_str());
            if (rc != ARES_SUCCESS) {
                return make_error("resolver " + resolver->to_string() + ": " + ares_strerror(rc));
            }
        }
        return {};
    }

    // Sends every query and waits until each has its answer (success or a
    // failure, timeouts included, by c-ares's own timers), or for stop.
    // `answers` must outlive the call: the callbacks write into it.
    bool run_queries(std::vector<Answer>& answers, const WakeFd& wake, const std::function<bool()>& stopping)
    {
        for (auto& a : answers) {
            ares_query(channel_, a.name.c_str(), kClassIn, a.type, &on_answer, &a);
        }
        const auto all_done = [&] {
            return std::all_of(answers.begin(), answers.end(), [](const Answer& a) { return a.done; });
        };
        while (!all_done()) {
            if (stopping()) {
                ares_cancel(channel_);  // runs the callbacks with ARES_ECANCELLED
                return false;
            }
            ares_socket_t socks[ARES_GETSOCK_MAXNUM];
            const int bits = ares_getsock(channel_, socks, ARES_GETSOCK_MAXNUM);
            std::vector<pollfd> fds{{wake.fd(), POLLIN, 0}};
            for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
                const bool r = ARES_GETSOCK_READABLE(bits, i);
                const bool w = ARES_GETSOCK_WRITABLE(bits, i);
                if (r || w) {
                    fds.push_back({socks[i], static_cast<short>((r ? POLLIN : 0) | (w ? POLLOUT : 0)), 0});
                }
            }
            timeval tv{};
            const timeval* next = ares_timeout(channel_, nullptr, &tv);
            const int wait_ms = next != nullptr ? static_cast<int>(tv.tv_sec * 1000 + tv.tv_usec / 1000) : 1000;
            ::poll(fds.data(), fds.size(), wait_ms);
            if (fds[0].revents & POLLIN) {
                wake.drain();
            }
            for (size_t i = 1; i < fds.size(); ++i) {
                const bool r = fds[i].revents & (POLLIN | POLLERR | POLLHUP);
                const bool w = fds[i].revents & POLLOUT;
                ares_process_fd(channel_, r ? fds[i].fd : ARES_SOCKET_BAD, w ? fds[i].fd : ARES_SOCKET_BAD);
            }
            ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
        }
        return true;
    }

private:
    ares_channel channel_ = nullptr;
};

model::IpAddress from_in4(const in_addr& a)
{
    model::IpAddress ip{model::IpFamily::kIpv4, {}};
    std::memcpy(ip.bytes.data(), &a, 4);
    return ip;
}

model::IpAddress from_in6(const ares_in6_addr& a)
{
    model::IpAddress ip{model::IpFamily::kIpv6, {}};
    std::memcpy(ip.bytes.data(), &a, 16);
    return ip;
}

// Addresses of an A or AAAA answer, or why there are none.
Result<std::vector<model::IpAddress>> addresses_of(const Answer& a)
{
    const std::string what = a.name + " " + type_name(a.type);
    if (a.status != ARES_SUCCESS) {
        return make_error(what + ": " + ares_strerror(a.status));
    }
    std::vector<model::IpAddress> out;
    int n = 256;
    if (a.type == kTypeA) {
        std::vector<ares_addrttl> ttls(256);
        const int rc = ares_parse_a_reply(a.raw.data(), static_cast<int>(a.raw.size()), nullptr, ttls.data(), &n);
        if (rc != ARES_SUCCESS) {
            return make_error(what + ": " + ares_strerror(rc));
        }
        for (int i = 0; i < n; ++i) {
            out.push_back(from_in4(ttls[static_cast<size_t>(i)].ipaddr));
        }
    } else {
        std::vector<ares_addr6ttl> ttls(256);
        const int rc = ares_parse_aaaa_reply(a.raw.data(), static_cast<int>(a.raw.size()), nullptr, ttls.data(), &n);
        if (rc != ARES_SUCCESS) {
            return make_error(what + ": " + ares_strerror(rc));
        }
        for (int i = 0; i < n; ++i) {
            out.push_back(from_in6(ttls[static_cast<size_t>(i)].ip6addr));
        }
    }
    if (out.empty()) {
        return make_error(what + ": no records");
    }
    return out;
}

struct Resolution {
    std::vector<BackendEntry> entries;
    uint32_t ttl = UINT32_MAX;  // smallest TTL seen
};

// Keeps the first entry per address (entries sorted first).
std::vector<BackendEntry> unique_by_address(std::vector<BackendEntry> entries)
{
    std::sort(entries.begin(), entries.end());
    std::vector<BackendEntry> out;
    for (auto& e : entries) {
        if (out.empty() || out.back().address != e.address) {
            out.push_back(e);
        }
    }
    return out;
}

}  // namespace

DnsSource::DnsSource(model::DnsDiscovery config, uint16_t default_port, UpdateCallback on_update,
                     const SourceOptions& options)
    : SourceBase(std::move(on_update), default_port), config_(std::move(config)), options_(options)
{
}

DnsSource::~DnsSource() { stop(); }

void DnsSource::run()
{
    const auto stopping_fn = [this] { return stopping(); };
    const milliseconds max_wait = config_.refresh_interval;
    const milliseconds min_wait = std::min(options_.dns_min_refresh, max_wait);
    const milliseconds retry_wait = std::min(options_.dns_retry, max_wait);

    // One resolution: the records, then (SRV) the targets' addresses.
    const auto resolve = [&](Channel& channel) -> Result<Resolution> {
        Resolution result;
        const int type = config_.record == model::DnsRecord::kA      ? kTypeA
                         : config_.record == model::DnsRecord::kAaaa ? kTypeAaaa
                                                                     : kTypeSrv;
        std::vector<Answer> first{Answer{config_.name, type}};
        if (!channel.run_queries(first, wake_fd(), stopping_fn)) {
            return make_error("stopped");
        }
        if (auto ttl = min_answer_ttl(first[0].raw, type)) {
            result.ttl = *ttl;
        }
        if (type != kTypeSrv) {
            auto addresses = addresses_of(first[0]);
            if (!addresses) {
                return make_error(addresses.error());
            }
            for (const auto& ip : *addresses) {
                result.entries.push_back(BackendEntry{ip, 0, kDefaultWeight, false});
            }
            return result;
        }
        const std::string what = config_.name + " SRV";
        if (first[0].status != ARES_SUCCESS) {
            return make_error(what + ": " + ares_strerror(first[0].status));
        }
        ares_srv_reply* srv = nullptr;
        const int rc = ares_parse_srv_reply(first[0].raw.data(), static_cast<int>(first[0].raw.size()), &srv);
        if (rc != ARES_SUCCESS) {
            return make_error(what + ": " + ares_strerror(rc));
        }
        struct Target {
            std::string host;
            uint16_t port;
            uint32_t weight;
        };
        std::vector<Target> targets;
        unsigned short best = USHRT_MAX;
        for (auto* r = srv; r != nullptr; r = r->next) {
            best = std::min(best, r->priority);
        }
        for (auto* r = srv; r != nullptr; r = r->next) {
            // A target of "." means "no service here" (RFC 2782).
            if (r->priority == best && r->host != nullptr && std::string(r->host) != "" &&
                std::string(r->host) != ".") {
                targets.push_back({r->host, r->port, std::clamp<uint32_t>(r->weight, kMinWeight, kMaxWeight)});
            }
        }
        ares_free_data(srv);
        std::vector<Answer> lookups;
        for (const auto& t : targets) {
            lookups.push_back(Answer{t.host, kTypeA});
            lookups.push_back(Answer{t.host, kTypeAaaa});
        }
        if (!channel.run_queries(lookups, wake_fd(), stopping_fn)) {
            return make_error("stopped");
        }
        for (size_t i = 0; i < targets.size(); ++i) {
            size_t found = 0;
            for (size_t k = 2 * i; k < 2 * i + 2; ++k) {
                auto addresses = addresses_of(lookups[k]);
                if (auto ttl = min_answer_ttl(lookups[k].raw, lookups[k].type)) {
                    result.ttl = std::min(result.ttl, *ttl);
                }
                if (!addresses) {
                    continue;  // most targets have only one family
                }
                for (const auto& ip : *addresses) {
                    result.entries.push_back(BackendEntry{ip, targets[i].port, targets[i].weight, false});
                    ++found;
                }
            }
            if (found == 0) {
                note_error(what + ": target " + targets[i].host + " has no A or AAAA records; skipped");
            }
        }
        if (result.entries.empty()) {
            return make_error(what + ": no usable targets");
        }
        return result;
    };

    auto channel = std::make_unique<Channel>();
    if (auto init = channel->init(config_.resolver, options_.dns_timeout); !init) {
        fail("dns " + config_.name + ": " + init.error());
        sleep_for(std::chrono::hours(24 * 365));  // a config problem: the status says so until stopped
        return;
    }
    while (!stopping()) {
        auto resolved = resolve(*channel);
        if (stopping()) {
            break;
        }
        milliseconds wait = retry_wait;
        if (resolved) {
            auto entries = canonical_backends(unique_by_address(std::move(resolved->entries)));
            accept(BackendSet{std::move(*entries), ++serial_});
            wait = std::clamp(milliseconds(int64_t{resolved->ttl} * 1000), min_wait, max_wait);
        } else {
            fail("dns " + resolved.error() + "; keeping the last good backend set");
            if (!config_.resolver) {
                // c-ares reads /etc/resolv.conf only when a channel is made;
                // a new one picks up a resolver the host has switched to.
                auto fresh = std::make_unique<Channel>();
                if (fresh->init(std::nullopt, options_.dns_timeout)) {
                    channel = std::move(fresh);
                }
            }
        }
        sleep_for(wait);
    }
}

}  // namespace sluice::discovery
