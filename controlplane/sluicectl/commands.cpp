// The commands behind `sluicectl status|services|backends|drain|undrain|
// stats|lookup|fingerprint|reload`: one API call (a few for status), then
// either the raw JSON (--json) or an aligned table.
#include "sluicectl/commands.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <thread>
#include <vector>

#include "model/address.h"
#include "sluicectl/exit_codes.h"
#include "sluicectl/table.h"

namespace sluice::ctl {
namespace {

using nlohmann::json;

// A request's outcome: the reply when its status is one the caller takes,
// else the exit code after the message went to ctx.err.
struct Call {
    std::optional<Reply> reply;
    int exit_code = kExitOk;
};

Call request(Context& ctx, bool post, const std::string& path, std::initializer_list<int> accepted = {})
{
    auto result = post ? ctx.api.post(path) : ctx.api.get(path);
    if (auto* failure = std::get_if<Failure>(&result)) {
        ctx.err << "sluicectl: " << failure->message << '\n';
        return {std::nullopt, failure->exit_code};
    }
    Reply& reply = std::get<Reply>(result);
    bool ok = reply.status >= 200 && reply.status < 300;
    for (int status : accepted) ok = ok || reply.status == status;
    if (!ok) {
        const Failure failure = failure_of(reply);
        ctx.err << "sluicectl: " << failure.message << '\n';
        return {std::nullopt, failure.exit_code};
    }
    if (reply.body.is_null()) {
        ctx.err << "sluicectl: " << ctx.api.url() << path << " did not answer JSON (is that sluiced?)\n";
        return {std::nullopt, kExitFailed};
    }
    return {std::move(reply), kExitOk};
}

// Any JSON scalar as table text; absent or null is "-".
std::string text(const json& object, const char* key)
{
    if (!object.is_object() || !object.contains(key)) return "-";
    const json& v = object[key];
    if (v.is_string()) return v.get<std::string>().empty() ? "-" : v.get<std::string>();
    if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
    if (v.is_null()) return "-";
    return v.dump();
}

uint64_t number(const json& object, const char* key)
{
    if (!object.is_object() || !object.contains(key) || !object[key].is_number()) return 0;
    return object[key].get<uint64_t>();
}

void print_raw(Context& ctx, const Reply& reply)
{
    ctx.out << reply.raw;
    if (reply.raw.empty() || reply.raw.back() != '\n') ctx.out << '\n';
}

// "per-worker, 2 x 1048576 entries, live ~1234 (0.1%), fullest: 1 at 0.2%";
// "" when the daemon did not send the table (an older sluiced).
std::string conn_table_summary(const json& s)
{
    if (!s.contains("connection_table") || !s["connection_table"].is_object()) return "";
    const json& t = s["connection_table"];
    if (t.contains("error") && t["error"].is_string() && !t["error"].get<std::string>().empty())
        return "not read: " + t["error"].get<std::string>();
    const json& parts = t.contains("partitions") ? t["partitions"] : json::array();
    if (!parts.is_array() || parts.empty()) return text(t, "layout") + ", no partitions (data plane not started)";
    auto percent = [](uint64_t part, uint64_t whole) {
        char out[32];
        const double share = whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
        std::snprintf(out, sizeof(out), "%.1f%%", share);
        return std::string(out);
    };
    const uint64_t capacity = number(t, "capacity");
    const uint64_t live = number(t, "live_estimate");
    std::string out = text(t, "layout") + ", " + std::to_string(parts.size()) + " x " +
                      std::to_string(number(parts[0], "capacity")) + " entries, live ~" + std::to_string(live) + " (" +
                      percent(live, capacity) + ")";
    if (parts.size() > 1) {
        const json* fullest = &parts[0];
        double worst = -1;
        for (const json& p : parts) {
            const double cap = static_cast<double>(number(p, "capacity"));
            const double fill = cap == 0 ? 0 : static_cast<double>(number(p, "live_estimate")) / cap;
            if (fill > worst) {
                worst = fill;
                fullest = &p;
            }
        }
        out += ", fullest: " + text(*fullest, "id") + " at " +
               percent(number(*fullest, "live_estimate"), number(*fullest, "capacity"));
    }
    return out;
}

std::string stats_table(const json& s, const json* previous, double elapsed)
{
    std::vector<std::pair<std::string, uint64_t>> rows;
    // Fixed order (the API's objects come sorted by name): traffic first.
    for (const char* key : {"rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "exception_packets", "control_packets",
                            "icmp_sent", "icmp_rate_limited", "conn_hits", "conn_misses", "conn_evictions"}) {
        rows.emplace_back(key, number(s["totals"], key));
    }
    rows.emplace_back("drops_total", number(s, "drops_total"));
    // Only the reasons that happened: 22 zero lines would hide the one that matters.
    for (auto it = s["drops"].begin(); it != s["drops"].end(); ++it) {
        if (it->get<uint64_t>() != 0) rows.emplace_back("drops." + it.key(), it->get<uint64_t>());
    }
    // DPDK ports: what the NIC received, and what it dropped before any
    // worker saw it (missed: RX queue full; nombuf: pool empty) even at 0.
    if (s.contains("ports") && s["ports"].is_array()) {
        for (const json& p : s["ports"]) {
            const std::string prefix = "port." + text(p, "name") + ".";
            for (const char* key : {"rx_packets", "tx_packets", "rx_missed", "rx_nombuf"})
                rows.emplace_back(prefix + key, number(p, key));
            for (const char* key : {"rx_errors", "tx_errors"}) {
                if (number(p, key) != 0) rows.emplace_back(prefix + key, number(p, key));
            }
        }
    }
    rows.emplace_back("publications", number(s, "publications"));
    rows.emplace_back("reloads_ok", number(s["reloads"], "ok"));
    rows.emplace_back("reloads_failed", number(s["reloads"], "failed"));

    const bool rates = previous != nullptr && elapsed > 0;
    Table table(rates ? std::vector<std::string>{"COUNTER", "VALUE", "PER SECOND"}
                      : std::vector<std::string>{"COUNTER", "VALUE"});
    table.align_right(1);
    table.align_right(2);
    for (const auto& [name, value] : rows) {
        std::vector<std::string> cells{name, std::to_string(value)};
        if (rates) {
            uint64_t before = 0;
            if (name.rfind("drops.", 0) == 0) {
                before = number((*previous)["drops"], name.c_str() + 6);
            } else if (name.rfind("port.", 0) == 0) {
                const size_t dot = name.rfind('.');
                const std::string port = name.substr(5, dot - 5);
                if (previous->contains("ports") && (*previous)["ports"].is_array()) {
                    for (const json& p : (*previous)["ports"]) {
                        if (text(p, "name") == port) before = number(p, name.c_str() + dot + 1);
                    }
                }
            } else if (name == "drops_total" || name == "publications") {
                before = number(*previous, name.c_str());
            } else if (name.rfind("reloads_", 0) == 0) {
                before = number((*previous)["reloads"], name == "reloads_ok" ? "ok" : "failed");
            } else {
                before = number((*previous)["totals"], name.c_str());
            }
            char rate[32];
            std::snprintf(rate, sizeof(rate), "%.1f", static_cast<double>(value - std::min(value, before)) / elapsed);
            cells.emplace_back(rate);
        }
        table.add_row(std::move(cells));
    }
    std::string head = "sluiced " + text(s, "version") + ", " + text(s, "dataplane") + ", " + text(s, "workers") +
                       " workers, up " + human_duration(s.value("uptime_seconds", 0.0)) + ", last publish " +
                       human_duration(s.value("last_publish_seconds", 0.0)) + "\n";
    if (const std::string conns = conn_table_summary(s); !conns.empty()) head += "connection table: " + conns + "\n";
    return head + table.render();
}

}  // namespace

int cmd_status(Context& ctx)
{
    Call health = request(ctx, false, "/healthz", {503});
    if (!health.reply) return health.exit_code;
    Call ready = request(ctx, false, "/readyz", {503});
    if (!ready.reply) return ready.exit_code;
    Call stats = request(ctx, false, "/v1/stats");
    if (!stats.reply) return stats.exit_code;
    Call services = request(ctx, false, "/v1/services");
    if (!services.reply) return services.exit_code;
    const bool alive = health.reply->status == 200;
    const bool is_ready = ready.reply->status == 200;
    const json& s = stats.reply->body;
    const json& list = services.reply->body["services"];

    if (ctx.json) {
        ctx.out << json{{"api", ctx.api.url()}, {"alive", alive}, {"ready", is_ready}, {"stats", s}, {"services", list}}
                       .dump()
                << '\n';
        return alive && is_ready ? kExitOk : kExitFailed;
    }
    uint64_t down = 0;
    uint64_t total = 0;
    uint64_t up = 0;
    uint64_t draining = 0;
    for (const json& svc : list) {
        down += svc.value("all_backends_down", false) ? 1 : 0;
        total += number(svc, "backends_total");
        up += number(svc, "backends_up");
        draining += number(svc, "backends_draining");
    }
    Table table({"", ""});
    table.add_row({"sluiced", text(s, "version") + " at " + ctx.api.url()});
    table.add_row({"health", alive ? "alive" : "UNHEALTHY"});
    table.add_row({"ready", is_ready ? "yes" : "NO (no published plan yet, or discovery not synced)"});
    table.add_row({"dataplane", text(s, "dataplane") + ", " + text(s, "workers") + " workers"});
    table.add_row({"uptime", human_duration(s.value("uptime_seconds", 0.0)) + " (since " + text(s, "started") + ")"});
    table.add_row({"services", std::to_string(list.size()) + (down > 0 ? ", " + std::to_string(down) + " ALL BACKENDS DOWN" : "")});
    table.add_row({"backends", std::to_string(up) + "/" + std::to_string(total) + " up, " + std::to_string(draining) +
                                   " draining"});
    if (const std::string conns = conn_table_summary(s); !conns.empty()) table.add_row({"connection table", conns});
    table.add_row({"publications", text(s, "publications") + ", last took " +
                                       human_duration(s.value("last_publish_seconds", 0.0))});
    table.add_row({"reloads", std::to_string(number(s["reloads"], "ok")) + " ok, " +
                                  std::to_string(number(s["reloads"], "failed")) + " failed"});
    if (s.contains("config") && s["config"].is_object()) {
        table.add_row({"config", text(s["config"], "path") + " sha256 " + text(s["config"], "sha256").substr(0, 16) +
                                     "... (since " + text(s["config"], "loaded") + ")"});
    }
    ctx.out << table.render();
    return alive && is_ready ? kExitOk : kExitFailed;
}

int cmd_services(Context& ctx)
{
    Call call = request(ctx, false, "/v1/services");
    if (!call.reply) return call.exit_code;
    if (ctx.json) {
        print_raw(ctx, *call.reply);
        return kExitOk;
    }
    Table table({"NAME", "VIP", "PROTO", "FWD", "UP/TOTAL", "DRAINING", "DISCOVERY", "FINGERPRINT", "PACKETS"});
    table.align_right(4);
    table.align_right(5);
    table.align_right(8);
    for (const json& s : call.reply->body["services"]) {
        std::string up = std::to_string(number(s, "backends_up")) + "/" + std::to_string(number(s, "backends_total"));
        if (s.value("all_backends_down", false)) up += " (ALL DOWN)";
        table.add_row({text(s, "name"), text(s, "vip"), text(s, "protocol"), text(s, "forwarding"), up,
                       text(s, "backends_draining"), text(s["discovery"], "source") + "/" + text(s["discovery"], "state"),
                       text(s, "fingerprint"), text(s, "packets")});
    }
    ctx.out << table.render();
    return kExitOk;
}

int cmd_backends(Context& ctx, const std::string& service)
{
    Call call = request(ctx, false, "/v1/services/" + url_encode(service) + "/backends");
    if (!call.reply) return call.exit_code;
    if (ctx.json) {
        print_raw(ctx, *call.reply);
        return kExitOk;
    }
    Table table({"BACKEND", "ID", "WEIGHT", "HEALTH", "DRAINING", "IN TABLE", "SLOTS", "PACKETS", "BYTES", "ERROR"});
    for (size_t c : {1, 2, 6, 7, 8}) table.align_right(c);
    for (const json& b : call.reply->body["backends"]) {
        std::string draining = text(b, "draining");
        if (b.value("draining", false) && !b.value("drain_source", std::string()).empty()) {
            draining += " (" + b["drain_source"].get<std::string>() + ")";
        }
        table.add_row({text(b, "name"), text(b, "backend_id"), text(b, "weight"), text(b, "health"), draining,
                       text(b, "in_table"), text(b, "slots"), text(b, "packets"), text(b, "bytes"),
                       text(b, "health_error")});
    }
    ctx.out << table.render();
    return kExitOk;
}

namespace {

// The live connection entries of `backend` ("address" or "address:port")
// in a /v1/connections answer; nullopt when the service has no such backend.
std::optional<uint64_t> backend_connections(const json& body, const std::string& service, const std::string& backend)
{
    if (!body.contains("services") || !body["services"].is_array()) return std::nullopt;
    for (const json& s : body["services"]) {
        if (text(s, "name") != service || !s.contains("backends")) continue;
        for (const json& b : s["backends"]) {
            if (text(b, "name") == backend || text(b, "address") == backend) return number(b, "connections");
        }
    }
    return std::nullopt;
}

}  // namespace

int cmd_drain(Context& ctx, const std::string& service, const std::string& backend, bool drain,
              const DrainWait& wait)
{
    Call call = request(ctx, true, "/v1/services/" + url_encode(service) + "/backends/" + url_encode(backend) +
                                       (drain ? "/drain" : "/undrain"));
    if (!call.reply) return call.exit_code;
    if (ctx.json) {
        print_raw(ctx, *call.reply);
    } else {
        ctx.out << service << '/' << backend << (drain ? ": draining (no new flows; established ones stay)\n"
                                                       : ": undrained (takes new flows again)\n");
    }
    if (!drain || !wait.wait) return kExitOk;
    // Until the backend's last connection entry is gone: closed (FIN/RST,
    // then the closing timeout) or idle past its timeout.
    const auto t0 = std::chrono::steady_clock::now();
    std::optional<uint64_t> last;
    for (;;) {
        Call look = request(ctx, false, "/v1/connections?service=" + url_encode(service));
        if (!look.reply) return look.exit_code;
        const std::optional<uint64_t> n = backend_connections(look.reply->body, service, backend);
        if (!n) {
            ctx.err << "sluicectl: " << service << " has no backend " << backend << " in /v1/connections\n";
            return kExitFailed;
        }
        const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (ctx.json && (*n == 0 || waited >= wait.timeout)) {
            ctx.out << json{{"service", service}, {"backend", backend}, {"connections", *n},
                            {"waited_seconds", waited}}.dump()
                    << '\n';
        } else if (!ctx.json && last != n) {
            ctx.out << service << '/' << backend << ": " << *n << " connection" << (*n == 1 ? "" : "s") << " left\n";
        }
        if (*n == 0) return kExitOk;
        if (waited >= wait.timeout) {
            ctx.err << "sluicectl: " << service << '/' << backend << " still has " << *n << " connection"
                    << (*n == 1 ? "" : "s") << " after " << static_cast<int>(waited) << " s\n";
            return kExitFailed;
        }
        last = n;
        std::this_thread::sleep_for(std::chrono::duration<double>(wait.interval));
    }
}

int cmd_connections(Context& ctx, const std::optional<std::string>& service)
{
    Call call = request(ctx, false, "/v1/connections" + (service ? "?service=" + url_encode(*service) : std::string()));
    if (!call.reply) return call.exit_code;
    if (ctx.json) {
        print_raw(ctx, *call.reply);
        return kExitOk;
    }
    const json& body = call.reply->body;
    Table table({"SERVICE", "BACKEND", "STATE", "CONNECTIONS"});
    table.align_right(3);
    for (const json& s : body["services"]) {
        for (const json& b : s["backends"]) {
            std::string state = b.value("in_table", false) ? "in table" : "out of table";
            if (b.value("draining", false)) state = "draining (" + text(b, "drain_source") + ")";
            table.add_row({text(s, "name"), text(b, "name"), state, text(b, "connections")});
        }
    }
    ctx.out << table.render();
    char took[96];
    std::snprintf(took, sizeof(took), "(live connection-table entries, %.1f s old; the walk took %.1f ms)\n",
                  body.value("age_seconds", 0.0), 1000.0 * body.value("walk_seconds", 0.0));
    ctx.out << took;
    return kExitOk;
}

int cmd_stats(Context& ctx, const WatchOptions& watch)
{
    const uint64_t samples = watch.watch ? watch.count : 1;
    json previous;
    auto previous_time = std::chrono::steady_clock::now();
    for (uint64_t i = 0; samples == 0 || i < samples; ++i) {
        if (i != 0) std::this_thread::sleep_for(std::chrono::duration<double>(watch.interval));
        Call call = request(ctx, false, "/v1/stats");
        if (!call.reply) return call.exit_code;
        const auto now = std::chrono::steady_clock::now();
        if (ctx.json) {
            // One object per line, so a script can read the stream line by line.
            ctx.out << call.reply->body.dump() << '\n';
        } else {
            if (watch.watch) ctx.out << (i != 0 ? "\n" : "");
            const double elapsed = std::chrono::duration<double>(now - previous_time).count();
            ctx.out << stats_table(call.reply->body, i != 0 ? &previous : nullptr, elapsed);
            if (const std::string e = text(call.reply->body, "counters_error"); e != "-")
                ctx.err << "sluicectl: the data plane's counters could not be read (the figures are not its own): "
                        << e << '\n';
        }
        ctx.out.flush();
        previous = std::move(call.reply->body);
        previous_time = now;
    }
    return kExitOk;
}

int cmd_workers(Context& ctx, double interval)
{
    Call first = request(ctx, false, "/v1/stats");
    if (!first.reply) return first.exit_code;
    const auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(interval));
    Call second = request(ctx, false, "/v1/stats");
    if (!second.reply) return second.exit_code;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const json& before_list = first.reply->body["per_worker"];
    const json& after_list = second.reply->body["per_worker"];
    if (!after_list.is_array()) {
        ctx.err << "sluicectl: /v1/stats has no per_worker list (a sluiced older than this sluicectl?)\n";
        return kExitFailed;
    }
    auto delta = [](const json& now, const json* then, const char* key) {
        const uint64_t a = number(now, key);
        const uint64_t b = then != nullptr ? number(*then, key) : 0;
        return static_cast<double>(a - std::min(a, b));
    };
    struct Row {
        const json* w;
        const json* then;  // the same worker in the first sample, if it was there
        double rx, tx, drops;
        std::optional<double> busy;  // fraction of the interval
    };
    std::vector<Row> rows;
    double rx_total = 0;
    for (const json& w : after_list) {
        const json* then = nullptr;
        if (before_list.is_array()) {
            for (const json& b : before_list) {
                if (number(b, "id") == number(w, "id")) then = &b;
            }
        }
        Row r{&w, then, delta(w, then, "rx_packets") / elapsed, delta(w, then, "tx_packets") / elapsed,
              delta(w, then, "drops") / elapsed, std::nullopt};
        if (then != nullptr && w.contains("busy_seconds") && w["busy_seconds"].is_number() &&
            then->contains("busy_seconds") && (*then)["busy_seconds"].is_number()) {
            const double busy = w["busy_seconds"].get<double>() - (*then)["busy_seconds"].get<double>();
            r.busy = std::clamp(busy / elapsed, 0.0, 1.0);
        }
        rx_total += r.rx;
        rows.push_back(r);
    }
    if (ctx.json) {
        json list = json::array();
        for (const Row& r : rows) {
            list.push_back({{"id", number(*r.w, "id")},
                            {"cpu", number(*r.w, "cpu")},
                            {"rx_per_second", r.rx},
                            {"tx_per_second", r.tx},
                            {"drops_per_second", r.drops},
                            {"rx_share", rx_total > 0 ? r.rx / rx_total : 0.0},
                            {"busy", r.busy ? json(*r.busy) : json(nullptr)}});
        }
        ctx.out << json{{"interval_seconds", elapsed}, {"workers", std::move(list)}}.dump() << '\n';
        return kExitOk;
    }
    auto fixed = [](double v, const char* format) {
        char out[32];
        std::snprintf(out, sizeof(out), format, v);
        return std::string(out);
    };
    Table table({"WORKER", "CPU", "RX/S", "TX/S", "DROPS/S", "RX SHARE", "BUSY"});
    for (size_t c = 2; c < 7; ++c) table.align_right(c);
    for (const Row& r : rows) {
        table.add_row({text(*r.w, "id"), text(*r.w, "cpu"), fixed(r.rx, "%.1f"), fixed(r.tx, "%.1f"),
                       fixed(r.drops, "%.1f"), rx_total > 0 ? fixed(100.0 * r.rx / rx_total, "%.1f%%") : "-",
                       r.busy ? fixed(100.0 * *r.busy, "%.1f%%") : "-"});
    }
    ctx.out << "over " << fixed(elapsed, "%.2f") << " s; BUSY: share of the time a DPDK worker spent on packets "
            << "(\"-\" for XDP: kernel softirq time)\n"
            << table.render();
    return kExitOk;
}

int cmd_lookup(Context& ctx, const std::string& client, const std::string& vip, bool udp)
{
    auto client_ep = model::parse_endpoint(client);
    auto vip_ep = model::parse_endpoint(vip);
    if (!client_ep || !vip_ep) {
        ctx.err << "sluicectl: " << (client_ep ? "vip '" + vip + "': " + vip_ep.error()
                                               : "client '" + client + "': " + client_ep.error()) << '\n';
        return kExitUsage;
    }
    const std::string path = "/v1/lookup?client=" + url_encode(client_ep->address.to_string()) +
                             "&client_port=" + std::to_string(client_ep->port) +
                             "&vip=" + url_encode(vip_ep->address.to_string()) +
                             "&vip_port=" + std::to_string(vip_ep->port) + "&protocol=" + (udp ? "udp" : "tcp");
    Call call = request(ctx, false, path);
    if (!call.reply) return call.exit_code;
    if (ctx.json) {
        print_raw(ctx, *call.reply);
        return kExitOk;
    }
    const json& r = call.reply->body;
    char hash[16];
    std::snprintf(hash, sizeof(hash), "0x%08llx", static_cast<unsigned long long>(number(r, "flow_hash")));
    Table table({"", ""});
    table.add_row({"flow", client_ep->to_string() + " -> " + vip_ep->to_string() + (udp ? " udp" : " tcp")});
    table.add_row({"service", text(r, "service")});
    table.add_row({"backend", text(r, "backend")});
    table.add_row({"reason", text(r, "reason")});
    table.add_row({"slot", text(r, "slot")});
    table.add_row({"flow hash", hash});
    ctx.out << table.render();
    if (r.contains("connection_table_error")) {
        // The answer is Maglev's alone: an established flow may be pinned elsewhere.
        ctx.err << "sluicectl: warning: connection table not read (" << text(r, "connection_table_error")
                << "): an established flow may use another backend\n";
        return kExitFailed;
    }
    return kExitOk;
}

int cmd_fingerprint(Context& ctx, const std::optional<std::string>& service)
{
    Call call = request(ctx, false, "/v1/fingerprints");
    if (!call.reply) return call.exit_code;
    const json& map = call.reply->body["fingerprints"];
    if (service && !map.contains(*service)) {
        ctx.err << "sluicectl: unknown service '" << *service << "'\n";
        return kExitFailed;
    }
    if (ctx.json) {
        if (!service) {
            print_raw(ctx, *call.reply);
            return kExitOk;
        }
        ctx.out << json{{"fingerprints", {{*service, map[*service]}}}}.dump() << '\n';
        return kExitOk;
    }
    Table table({"SERVICE", "FINGERPRINT"});
    for (auto it = map.begin(); it != map.end(); ++it) {
        if (!service || it.key() == *service) table.add_row({it.key(), it->get<std::string>()});
    }
    ctx.out << table.render();
    return kExitOk;
}

int cmd_reload(Context& ctx)
{
    Call call = request(ctx, true, "/v1/reload", {422});
    if (!call.reply) return call.exit_code;
    const json& r = call.reply->body;
    const bool applied = r.value("applied", false);
    if (ctx.json) {
        print_raw(ctx, *call.reply);
    } else {
        for (const json& line : r["diagnostics"]) ctx.err << line.get<std::string>() << '\n';
        if (applied) ctx.out << "reload applied\n";
        else ctx.err << "sluicectl: reload refused; the running configuration stays\n";
    }
    return applied ? kExitOk : kExitFailed;
}

}  // namespace sluice::ctl
