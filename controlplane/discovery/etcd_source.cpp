// The etcd source's worker: range read, watch stream, reconnect policy.
#include "discovery/etcd_source.h"

#include <cstdlib>
#include <set>

#include <nlohmann/json.hpp>

#include "discovery/etcd_codec.h"

namespace sluice::discovery {

using nlohmann::json;
using std::chrono::milliseconds;

namespace {

// The gateway writes int64 fields as JSON strings ("revision": "12").
int64_t as_int(const json& object, const char* key)
{
    if (!object.is_object()) {
        return 0;
    }
    const auto it = object.find(key);
    if (it == object.end()) {
        return 0;
    }
    if (it->is_number_integer()) {
        return it->get<int64_t>();
    }
    if (it->is_string()) {
        return std::strtoll(it->get_ref<const std::string&>().c_str(), nullptr, 10);
    }
    return 0;
}

std::string as_string(const json& object, const char* key)
{
    if (!object.is_object()) {
        return {};
    }
    const auto it = object.find(key);
    return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool as_bool(const json& object, const char* key)
{
    if (!object.is_object()) {
        return false;
    }
    const auto it = object.find(key);
    return it != object.end() && it->is_boolean() && it->get<bool>();
}

// object[key] when object is an object holding it, else an empty object:
// lookups on a gateway reply never throw whatever its shape.
const json& child(const json& object, const char* key)
{
    static const json empty = json::object();
    if (!object.is_object()) {
        return empty;
    }
    const auto it = object.find(key);
    return it != object.end() ? *it : empty;
}

std::string decode(const json& kv, const char* field)
{
    return base64_decode(as_string(kv, field)).value_or(std::string());
}

std::string strip_slash(std::string url)
{
    while (!url.empty() && url.back() == '/') {
        url.pop_back();
    }
    return url;
}

}  // namespace

EtcdSource::EtcdSource(model::EtcdDiscovery config, std::string password, uint16_t default_port,
                       UpdateCallback on_update, const SourceOptions& options)
    : SourceBase(std::move(on_update), default_port),
      config_(std::move(config)),
      password_(std::move(password)),
      options_(options),
      http_(HttpTls{config_.ca_file, config_.cert_file, config_.key_file}, config_.dial_timeout,
            [this] { return stopping(); })
{
}

EtcdSource::~EtcdSource() { stop(); }

milliseconds EtcdSource::next_backoff()
{
    // Exponential from backoff_initial, capped at backoff_max, then "equal
    // jitter" (half fixed, half random) so that many sluice nodes cut off
    // by the same etcd outage do not reconnect in lockstep.
    const unsigned shift = std::min(failures_, 20u);
    ++failures_;
    const int64_t base =
        std::min<int64_t>(options_.backoff_max.count(), options_.backoff_initial.count() << shift);
    std::uniform_int_distribution<int64_t> jitter(0, std::max<int64_t>(base / 2, 1));
    return milliseconds(base / 2 + jitter(rng_));
}

void EtcdSource::run()
{
    if (config_.endpoints.empty()) {
        fail("etcd: no endpoints configured");
        return;
    }
    size_t index = 0;
    bool restarted = false;
    while (!stopping()) {
        const std::string endpoint = strip_slash(config_.endpoints[index]);
        watching_ = false;
        Result<void> result;
        try {
            result = session(endpoint);
        } catch (const std::exception& e) {
            // nlohmann::json::dump throws on invalid UTF-8 (a user name from
            // the config, say); nothing may escape the worker thread.
            result = make_error(std::string("internal error: ") + e.what());
        }
        if (stopping()) {
            break;
        }
        if (result) {
            // A deliberate restart (compaction, restored store) re-reads at
            // once; two in a row back off so a store that keeps refusing
            // the watch is not hammered.
            if (restarted) {
                sleep_for(next_backoff());
            }
            restarted = true;
            continue;
        }
        restarted = false;
        fail("etcd " + endpoint + ": " + result.error() + "; keeping the last good backend set");
        if (watching_) {
            failures_ = 0;  // it worked until now: retry quickly
        }
        // Fail over: the next attempt goes to the next endpoint.
        index = (index + 1) % config_.endpoints.size();
        sleep_for(next_backoff());
    }
}

Result<void> EtcdSource::session(const std::string& endpoint)
{
    std::string token;
    if (config_.username) {
        auto auth = authenticate(endpoint);
        if (!auth) {
            return make_error(auth.error());
        }
        token = std::move(*auth);
    }
    if (!have_snapshot_) {
        auto read = read_all(endpoint, token);
        if (!read) {
            return read;
        }
    }
    const json request = {{"create_request",
                           {{"key", base64_encode(config_.prefix)},
                            {"range_end", base64_encode(prefix_range_end(config_.prefix))},
                            {"start_revision", std::to_string(revision_ + 1)},
                            {"progress_notify", true}}}};
    // A single-key linearizable read (the prefix itself, usually absent):
    // cheap, and it needs the quorum, so a member cut off from its cluster
    // fails it too.
    const EtcdHttp::Probe probe{endpoint + "/v3/kv/range",
                                json{{"key", base64_encode(config_.prefix)}, {"limit", 1}, {"keys_only", true}}.dump(),
                                options_.etcd_probe_interval, options_.etcd_probe_timeout};
    JsonObjectSplitter splitter;
    Result<void> verdict;
    bool restart = false;
    auto streamed = http_.stream(endpoint + "/v3/watch", request.dump(), token, [&](std::string_view chunk) {
        for (const auto& message : splitter.feed(chunk)) {
            auto applied = apply_watch_message(message);
            if (!applied) {
                verdict = make_error(applied.error());
                return false;
            }
            if (!*applied) {
                restart = true;
                return false;
            }
        }
        return true;
    }, &probe);
    if (!verdict) {
        return verdict;
    }
    if (restart) {
        return {};
    }
    return streamed;
}

Result<std::string> EtcdSource::authenticate(const std::string& endpoint)
{
    const json request = {{"name", *config_.username}, {"password", password_}};
    auto reply = http_.post(endpoint + "/v3/auth/authenticate", request.dump(), "",
                            std::max(config_.dial_timeout * 2, milliseconds(5000)));
    if (!reply) {
        return make_error("authenticate as " + *config_.username + ": " + reply.error());
    }
    const json body = json::parse(*reply, nullptr, false);
    const std::string token = as_string(body, "token");
    if (token.empty()) {
        return make_error("authenticate as " + *config_.username + ": no token in reply");
    }
    return token;
}

Result<void> EtcdSource::read_all(const std::string& endpoint, const std::string& token)
{
    const json request = {{"key", base64_encode(config_.prefix)},
                          {"range_end", base64_encode(prefix_range_end(config_.prefix))}};
    auto reply = http_.post(endpoint + "/v3/kv/range", request.dump(), token,
                            std::max(config_.dial_timeout * 2, milliseconds(5000)));
    if (!reply) {
        return make_error("range " + config_.prefix + ": " + reply.error());
    }
    const json body = json::parse(*reply, nullptr, false);
    if (body.is_discarded() || !body.is_object() || !body.contains("header")) {
        return make_error("range " + config_.prefix + ": unexpected reply: " + reply->substr(0, 200));
    }
    valid_.clear();
    invalid_.clear();
    if (const auto kvs = body.find("kvs"); kvs != body.end() && kvs->is_array()) {
        for (const auto& kv : *kvs) {
            apply_put(decode(kv, "key"), decode(kv, "value"));
        }
    }
    revision_ = as_int(child(body, "header"), "revision");
    have_snapshot_ = true;
    publish();
    return {};
}

Result<bool> EtcdSource::apply_watch_message(const std::string& text)
{
    const json message = json::parse(text, nullptr, false);
    if (message.is_discarded() || !message.is_object()) {
        return make_error("unparsable watch message: " + text.substr(0, 200));
    }
    if (message.contains("error")) {
        return make_error("watch error: " + message["error"].dump().substr(0, 300));
    }
    const auto it = message.find("result");
    if (it == message.end()) {
        return true;
    }
    const json& result = *it;
    if (as_bool(result, "canceled")) {
        const int64_t compacted = as_int(result, "compact_revision");
        if (compacted > 0) {
            // The events after revision_ are gone; only a full read is right.
            note_error("etcd: revision " + std::to_string(revision_ + 1) + " compacted (now " +
                       std::to_string(compacted) + "); re-reading " + config_.prefix);
            have_snapshot_ = false;
            return false;
        }
        return make_error("watch canceled: " + as_string(result, "cancel_reason"));
    }
    if (as_bool(result, "created")) {
        const int64_t store = as_int(child(result, "header"), "revision");
        if (store > 0 && store < revision_) {
            // The store is older than what we have seen: restored from a
            // backup or rebuilt. A watch from revision_ + 1 would wait for
            // a future that may never come, so read what it holds now.
            note_error("etcd: store revision " + std::to_string(store) + " is behind the " +
                       std::to_string(revision_) + " already seen (restored?); re-reading " + config_.prefix);
            have_snapshot_ = false;
            return false;
        }
        watching_ = true;
        failures_ = 0;
        publish();  // connected again: the set in force is confirmed current
        return true;
    }
    const auto events = result.find("events");
    if (events == result.end() || !events->is_array() || events->empty()) {
        // A progress notification: every event up to header.revision was sent.
        revision_ = std::max(revision_, as_int(child(result, "header"), "revision"));
        return true;
    }
    for (const auto& event : *events) {
        const json& kv = child(event, "kv");
        const std::string key = decode(kv, "key");
        // The gateway omits enum fields at their default: no "type" is PUT.
        if (as_string(event, "type") == "DELETE") {
            valid_.erase(key);
            invalid_.erase(key);
        } else {
            apply_put(key, decode(kv, "value"));
        }
        revision_ = std::max(revision_, as_int(kv, "mod_revision"));
    }
    publish();
    return true;
}

void EtcdSource::apply_put(const std::string& key, const std::string& value)
{
    const json parsed = json::parse(value, nullptr, false);
    Result<BackendEntry> entry = parsed.is_discarded() ? Result<BackendEntry>(make_error("value is not JSON"))
                                                       : parse_backend_json(parsed);
    if (!entry) {
        valid_.erase(key);
        invalid_[key] = entry.error();
        note_error("etcd key " + key + ": " + entry.error() + "; key ignored");
        return;
    }
    invalid_.erase(key);
    valid_[key] = *entry;
}

void EtcdSource::publish()
{
    std::vector<BackendEntry> entries;
    std::set<model::IpAddress> seen;
    size_t ignored = invalid_.size();
    for (const auto& [key, entry] : valid_) {
        // Two keys naming one address: the first key (in key order) wins, so
        // every node that reads the same store picks the same one.
        if (!seen.insert(entry.address).second) {
            ++ignored;
            note_error("etcd key " + key + ": address " + entry.address.to_string() +
                       " already given by another key; key ignored");
            continue;
        }
        entries.push_back(entry);
    }
    auto canonical = canonical_backends(std::move(entries));
    if (canonical) {
        accept(BackendSet{std::move(*canonical), static_cast<uint64_t>(revision_)}, ignored);
    }
}

}  // namespace sluice::discovery
