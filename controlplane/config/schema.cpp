// The accepted keys of every config table, and the typo suggestion logic.
#include "config/schema.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>

namespace sluice::config {

const std::vector<TableSchema>& schema()
{
    // Keep in step with the readers in sections_*.cpp; a reader asking for a
    // key not listed here aborts in tests (see TableReader::node).
    static const std::vector<TableSchema> tables = {
        {"", "", {"daemon", "dataplane", "network", "conntrack", "filter", "service"}},
        {"daemon", "", {"log_level", "state_dir", "admin"}},
        {"daemon.admin", "", {"listen", "port", "token_file"}},
        {"dataplane", "", {"type", "dpdk", "xdp", "icmp_errors_per_sec", "icmp_errors_burst"}},
        {"dataplane.dpdk", "",
         {"eal_args", "main_lcore", "worker_lcores", "ports", "mbuf_pool_size", "conn_table_size",
          "exception_path", "exception_tap", "egress_port", "next_hop_mac"}},
        {"dataplane.dpdk.ports", "", {"name", "device", "rx_queues"}},
        {"dataplane.xdp", "", {"interfaces", "mode", "allow_generic_fallback", "pin_path", "conn_table_size", "conn_table_mode"}},
        {"network", "", {"source_ipv4", "source_ipv6", "gateway_ipv4", "gateway_ipv6"}},
        {"conntrack", "", {"tcp_established_s", "tcp_syn_fin_s", "udp_s"}},
        {"filter", "", {"allow", "deny", "payload_rules", "allow_unenforced_payload_rules"}},
        {"filter.payload_rules", "", {"id", "pattern", "flags"}},
        {"service", "",
         {"name", "vip", "protocol", "forwarding", "gue_port", "table_size", "backends", "discovery",
          "health_check", "on_all_backends_down", "drain_deadline_s", "filter", "rate_limit", "hash"}},
        {"service.backends", "", {"address", "port", "weight", "state"}},
        {"service.discovery", "etcd",
         {"type", "endpoints", "prefix", "username", "password_file", "ca_file", "cert_file",
          "key_file", "dial_timeout_ms"}},
        {"service.discovery", "file", {"type", "path"}},
        {"service.discovery", "dns", {"type", "name", "record", "resolver", "port", "refresh_ms"}},
        {"service.health_check", "",
         {"type", "interval_ms", "timeout_ms", "rise", "fall", "port", "path", "host",
          "expect_status", "send", "expect"}},
        {"service.filter", "", {"allow", "deny", "payload_rules", "allow_unenforced_payload_rules"}},
        {"service.filter.payload_rules", "", {"id", "pattern", "flags"}},
        {"service.rate_limit", "",
         {"packets_per_sec", "packets_burst", "new_flows_per_sec", "new_flows_burst"}},
    };
    return tables;
}

const TableSchema& table_schema(std::string_view path, std::string_view variant)
{
    for (const TableSchema& table : schema()) {
        if (table.path == path && table.variant == variant) {
            return table;
        }
    }
    std::fprintf(stderr, "sluice: config schema has no table '%.*s'\n", static_cast<int>(path.size()),
                 path.data());
    std::abort();
}

std::vector<std::string> schema_key_paths()
{
    std::vector<std::string> paths;
    for (const TableSchema& table : schema()) {
        for (std::string_view key : table.keys) {
            std::string full = table.path.empty() ? std::string(key)
                                                  : std::string(table.path) + "." + std::string(key);
            if (std::find(paths.begin(), paths.end(), full) == paths.end()) {
                paths.push_back(std::move(full));
            }
        }
    }
    return paths;
}

size_t edit_distance(std::string_view a, std::string_view b)
{
    const auto lower = [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); };
    const size_t n = a.size();
    const size_t m = b.size();
    // Full matrix: keys are short, clarity beats the two-row trick.
    std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1, 0));
    for (size_t i = 0; i <= n; ++i) d[i][0] = i;
    for (size_t j = 0; j <= m; ++j) d[0][j] = j;
    for (size_t i = 1; i <= n; ++i) {
        for (size_t j = 1; j <= m; ++j) {
            const size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) && lower(a[i - 2]) == lower(b[j - 1])) {
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
            }
        }
    }
    return d[n][m];
}

std::optional<std::string_view> closest_match(std::string_view word,
                                              const std::vector<std::string_view>& candidates)
{
    // A third of the word's length, at least one edit, at most three: close
    // enough to be a slip of the fingers, far enough not to suggest nonsense.
    const size_t limit = std::clamp<size_t>(word.size() / 3, 1, 3);
    std::optional<std::string_view> best;
    size_t best_distance = limit + 1;
    for (std::string_view candidate : candidates) {
        const size_t distance = edit_distance(word, candidate);
        if (distance < best_distance) {
            best = candidate;
            best_distance = distance;
        }
    }
    return best;
}

}  // namespace sluice::config
