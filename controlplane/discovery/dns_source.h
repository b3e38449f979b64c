// The DNS source: backends from A, AAAA or SRV records, resolved with
// c-ares against the configured resolver (or /etc/resolv.conf) and
// re-resolved when the answer's TTL runs out, clamped to
// [SourceOptions::dns_min_refresh, DnsDiscovery::refresh_interval] so a
// TTL of 0 does not become a query storm and a TTL of a day does not hide
// changes for a day.
//
// A/AAAA: one backend per address, weight 100, port = discovery.port or
// the VIP's. SRV: the targets of the lowest priority (RFC 2782: higher
// priorities are fallbacks, which the health checks cover instead), each
// resolved to A and AAAA; port and weight from the record, weight 0 raised
// to 1 (Maglev needs a share) and capped at 10000. An address reached
// through two SRV records keeps the first in canonical order.
//
// NXDOMAIN, an empty answer, a timeout or a refused query keeps the last
// good set (stale) and retries after SourceOptions::dns_retry: an empty
// pool from DNS is far more often a broken zone than an intent.
#pragma once

#include <string>

#include "discovery/source_base.h"
#include "model/service.h"

namespace sluice::discovery {

class DnsSource final : public SourceBase {
public:
    // Owning thread.
    DnsSource(model::DnsDiscovery config, uint16_t default_port, UpdateCallback on_update,
              const SourceOptions& options);
    ~DnsSource() override;

    std::string_view kind() const override { return "dns"; }

private:
    void run() override;

    model::DnsDiscovery config_;
    SourceOptions options_;
    uint64_t serial_ = 0;
};

}  // namespace sluice::discovery
