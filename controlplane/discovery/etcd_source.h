// The etcd v3 source: every key under a prefix is one backend whose value
// is a JSON object of the shared schema (parse_backend_json). It talks to
// etcd's JSON gRPC gateway over HTTP (libcurl): /v3/kv/range reads the
// prefix, then /v3/watch streams changes from the read's revision + 1.
//
// Failure handling:
//   - a value that does not parse is ignored (that key only), recorded in
//     the status; the rest of the set stands;
//   - a lost connection moves to the next endpoint after a backoff
//     (exponential, capped, with jitter) and resumes the watch from the
//     last revision seen, so nothing between is missed; meanwhile the last
//     good set is kept and the status is stale;
//   - a watch is only as good as the server behind it: while it runs, a
//     linearizable read must succeed every etcd_probe_interval within
//     etcd_probe_timeout (SourceOptions; 5 s and 3 s), or the session ends
//     as failed (stale, last good set kept) and reconnects. A quiet watch
//     and TCP keepalives cannot tell a stopped or quorum-less etcd from an
//     idle one;
//   - a watch refused because its revision was compacted re-reads the whole
//     prefix (the events in between are gone), and so does a store whose
//     revision is behind the one already seen (restored from a backup).
//
// TLS: ca_file/cert_file/key_file go to curl as they are. An etcd that
// requires client certificates needs clientAuth in its own server
// certificate's key usage, because its gateway dials its gRPC port with
// that certificate (etcd-io/etcd#16590); otherwise every request here gets
// HTTP 503 "connection closed".
#pragma once

#include <map>
#include <random>
#include <string>

#include "discovery/etcd_http.h"
#include "discovery/source_base.h"
#include "model/service.h"

namespace sluice::discovery {

class EtcdSource final : public SourceBase {
public:
    // `password` is the content of config.password_file (read by the
    // factory), unused without a username. Owning thread.
    EtcdSource(model::EtcdDiscovery config, std::string password, uint16_t default_port,
               UpdateCallback on_update, const SourceOptions& options);
    ~EtcdSource() override;

    std::string_view kind() const override { return "etcd"; }

private:
    void run() override;
    void wake_extra() override { http_.wake(); }

    // One connection attempt to the current endpoint: authenticate, read if
    // needed, watch until something ends it. Returns why it ended.
    Result<void> session(const std::string& endpoint);
    Result<std::string> authenticate(const std::string& endpoint);
    Result<void> read_all(const std::string& endpoint, const std::string& token);
    // Applies one watch response; false when the watch must be restarted.
    Result<bool> apply_watch_message(const std::string& text);
    void apply_put(const std::string& key, const std::string& value);
    // Builds the set from the valid keys and hands it to accept().
    void publish();
    std::chrono::milliseconds next_backoff();

    model::EtcdDiscovery config_;
    std::string password_;
    SourceOptions options_;
    EtcdHttp http_;

    std::map<std::string, BackendEntry> valid_;  // key -> parsed value
    std::map<std::string, std::string> invalid_;  // key -> why it is ignored
    int64_t revision_ = 0;     // every event up to this revision is applied
    bool have_snapshot_ = false;  // false: the next session re-reads the prefix
    bool watching_ = false;    // the current watch was created
    unsigned failures_ = 0;    // consecutive failed sessions, for the backoff
    std::mt19937 rng_{std::random_device{}()};
};

}  // namespace sluice::discovery
