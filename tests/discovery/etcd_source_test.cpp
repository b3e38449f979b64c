// The etcd source against a real etcd started by each test: initial sync,
// watch updates, restart, outage, compaction, malformed values, failover.
#include <gtest/gtest.h>

#include "discovery/etcd_codec.h"
#include "discovery/source.h"
#include "etcd_server.h"
#include "support.h"
#include "test_env.h"

namespace sluice::discovery {
namespace {

using namespace testing;
using namespace std::chrono_literals;

constexpr auto kBound = 5000ms;  // watch propagation is ~10 ms; the rest is slack for a loaded CI box
const std::string kPrefix = "/sluice/services/api/";

#define REQUIRE_ETCD()                                                                       \
    SLUICE_REQUIRE(have_program(kEtcd) && have_program(kEtcdctl), "etcd and etcdctl (etcd-server, etcd-client)")

model::Service etcd_service(std::vector<std::string> endpoints)
{
    model::Service s;
    s.name = "api";
    s.vip.port = 80;
    model::EtcdDiscovery d;
    d.endpoints = std::move(endpoints);
    d.prefix = kPrefix;
    d.dial_timeout = 1000ms;
    s.discovery = d;
    return s;
}

SourceOptions fast_options()
{
    SourceOptions o;
    o.backoff_initial = 100ms;
    o.backoff_max = 500ms;
    return o;
}

std::string backend(const std::string& address, int weight = 100, bool draining = false)
{
    return "{\"address\": \"" + address + "\", \"weight\": " + std::to_string(weight) +
           (draining ? ", \"state\": \"draining\"" : "") + "}";
}

// The codecs the gateway needs: base64 both ways and prefix range ends.
TEST(EtcdCodec, Base64AndRangeEnd)
{
    for (const std::string s : {"", "a", "ab", "abc", "abcd", "/sluice/x\xff"}) {
        EXPECT_EQ(base64_decode(base64_encode(s)).value(), s);
    }
    EXPECT_EQ(base64_encode("/a/"), "L2Ev");
    EXPECT_EQ(prefix_range_end("/a/"), "/a0");
    EXPECT_EQ(prefix_range_end("a\xff"), "b");
    EXPECT_EQ(prefix_range_end("\xff"), std::string(1, '\0'));
    JsonObjectSplitter split;
    EXPECT_TRUE(split.feed("{\"a\": \"}{\\\"\"").empty());
    const auto out = split.feed(", \"b\": [1]}\n{\"c\":2}\n{");
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0], "{\"a\": \"}{\\\"\", \"b\": [1]}");
    EXPECT_EQ(out[1], "{\"c\":2}");
    EXPECT_EQ(split.feed("}").size(), 1u);
}

// Initial read (through a dead first endpoint: failover), then puts, updates and deletes under the watch.
TEST(EtcdSource, InitialSyncThenWatchUpdates)
{
    REQUIRE_ETCD();
    EtcdServer etcd;
    ASSERT_TRUE(etcd.start()) << read_file(etcd.log_path());
    ASSERT_TRUE(etcd.put(kPrefix + "b", backend("10.0.0.2", 50)));
    ASSERT_TRUE(etcd.put(kPrefix + "a", backend("10.0.0.1")));
    ASSERT_TRUE(etcd.put("/sluice/services/apiother/c", backend("10.0.0.99")));  // outside the prefix

    Recorder rec;
    auto src = make_source(etcd_service({"http://127.0.0.1:" + std::to_string(free_port()), etcd.url()}),
                           rec.callback(), fast_options());
    ASSERT_TRUE(src) << src.error();
    ASSERT_TRUE((*src)->start());
    ASSERT_TRUE(rec.wait_for_text("10.0.0.1:80 w=100 10.0.0.2:80 w=50", kBound)) << rec.last_text();
    ASSERT_TRUE(wait_until([&] { return (*src)->status().state == SourceState::kOk; }, kBound));

    ASSERT_TRUE(etcd.put(kPrefix + "c", backend("2001:db8::3", 7, true)));
    EXPECT_TRUE(rec.wait_for_text("10.0.0.1:80 w=100 10.0.0.2:80 w=50 [2001:db8::3]:80 w=7 draining", kBound))
        << rec.last_text();
    ASSERT_TRUE(etcd.put(kPrefix + "b", backend("10.0.0.2", 60)));
    EXPECT_TRUE(rec.wait_for_text("10.0.0.1:80 w=100 10.0.0.2:80 w=60 [2001:db8::3]:80 w=7 draining", kBound));
    ASSERT_TRUE(etcd.del(kPrefix + "a"));
    EXPECT_TRUE(rec.wait_for_text("10.0.0.2:80 w=60 [2001:db8::3]:80 w=7 draining", kBound)) << rec.last_text();
    EXPECT_EQ((*src)->status().revision, static_cast<uint64_t>(etcd.revision()));
    EXPECT_TRUE(rec.delivered_from_one_worker_thread());
    (*src)->stop();
}

// A malformed value drops that key only, with the key named in the status; fixing it brings it in.
TEST(EtcdSource, MalformedValueIgnoredNotWholeSet)
{
    REQUIRE_ETCD();
    EtcdServer etcd;
    ASSERT_TRUE(etcd.start()) << read_file(etcd.log_path());
    ASSERT_TRUE(etcd.put(kPrefix + "a", backend("10.0.0.1")));
    ASSERT_TRUE(etcd.put(kPrefix + "bad", "{\"address\": \"10.0.0.300\"}"));
    Recorder rec;
    auto src = make_source(etcd_service({etcd.url()}), rec.callback(), fast_options());
    ASSERT_TRUE(src && (*src)->start());
    ASSERT_TRUE(rec.wait_for_text("10.0.0.1:80 w=100", kBound)) << rec.last_text();
    auto st = (*src)->status();
    EXPECT_EQ(st.state, SourceState::kOk);
    EXPECT_EQ(st.ignored_entries, 1u);
    EXPECT_NE(st.last_error.find("etcd key " + kPrefix + "bad"), std::string::npos) << st.last_error;

    ASSERT_TRUE(etcd.put(kPrefix + "worse", "not json at all"));
    ASSERT_TRUE(etcd.put(kPrefix + "dup", backend("10.0.0.1", 5)));  // same address as key "a"
    ASSERT_TRUE(wait_until([&] { return (*src)->status().ignored_entries == 3; }, kBound));
    EXPECT_EQ(rec.last_text(), "10.0.0.1:80 w=100");
    ASSERT_TRUE(etcd.put(kPrefix + "bad", backend("10.0.0.3")));
    EXPECT_TRUE(rec.wait_for_text("10.0.0.1:80 w=100 10.0.0.3:80 w=100", kBound)) << rec.last_text();
    EXPECT_EQ((*src)->status().ignored_entries, 2u);
    (*src)->stop();
}

// etcd restarted mid-watch on the same data: the set is kept throughout and the watch resumes.
TEST(EtcdSource, RestartMidWatchResumes)
{
    REQUIRE_ETCD();
    EtcdServer etcd;
    ASSERT_TRUE(etcd.start()) << read_file(etcd.log_path());
    ASSERT_TRUE(etcd.put(kPrefix + "a", backend("10.0.0.1")));
    Recorder rec;
    auto src = make_source(etcd_service({etcd.url()}), rec.callback(), fast_options());
    ASSERT_TRUE(src && (*src)->start());
    ASSERT_TRUE(rec.wait_for_text("10.0.0.1:80 w=100", kBound));

    etcd.stop();
    ASSERT_TRUE(wait_until([&] { return (*src)->status().state == SourceState::kStale; }, kBound));
    ASSERT_TRUE(etcd.start()) << read_file(etcd.log_path());
    ASSERT_TRUE(wait_until([&] { return (*src)->status().state == SourceState::kOk; }, kBound))
        << (*src)->status().last_error;
    EXPECT_EQ(rec.count(), 1u);  // nothing changed, nothing delivered, nothing emptied
    ASSERT_TRUE(etcd.put(kPrefix + "b", backend("10.0.0.2")));
    EXPECT_TRUE(rec.wait_for_text("10.0.0.1:80 w=100 10.0.0.2:80 w=100", kBound)) << rec.last_text();
    (*src)->stop();
}

// etcd down for several seconds: stale with the last good set and an error, then back in sync.
TEST(EtcdSource, OutageKeepsLastGoodThenResyncs)
{
    REQUIRE_ETCD();
    EtcdServer etcd;
    ASSERT_TRUE(etcd.start()) << read_file(etcd.log_path());
    ASSERT_TRUE(etcd.put(kPrefix + "a", backend("10.0.0.1")));
    ASSERT_TRUE(etcd.put(kPrefix + "b", backend("10.0.0.2")));
    Recorder rec;
    auto src = make_source(etcd_service({etcd.url()}), rec.callback(), fast_options());
    ASSERT_TRUE(src && (*src)->start());
    ASSERT_TRUE(rec.wait_for_text("10.0.0.1:80 w=100 10.0.0.2:80 w=100", kBound));
    const auto synced_at = *(*src)->status().last_update;

    etcd.stop();
    std::this_thread::sleep_for(3s);
    auto st = (*src)->status();
    EXPECT_EQ(st.state, SourceState::kStale);
    EXPECT_EQ(st.backend_count, 2u);
    EXPECT_EQ(*st.last_update, synced_at);  // the time of the set in force, not of the outage
    EXPECT_NE(st.last_error.find("keeping the last good"), std::string::npos) << st.last_error;
    EXPECT_EQ(rec.count(), 1u);
    EXPECT_EQ(rec.last_text(), "10.0.0.1:80 w=100 10.0.0.2:80 w=100");

    ASSERT_TRUE(etcd.start()) << read_file(etcd.log_path());
    ASSERT_TRUE(etcd.del(kPrefix + "b"));
    EXPECT_TRUE(rec.wait_for_text("10.0.0.1:80 w=100", kBound)) << rec.last_text();
    EXPECT_TRUE(wait_until([&] { return (*src)->status().state == SourceState::kOk; }, kBound));
    (*src)->stop();
}

// A frozen etcd (SIGSTOP: connections open, TCP keepalives answered by the
// kernel, nothing served) is noticed by the watch's liveness probe: stale
// within interval + timeout, the last good set kept; once it thaws the
// watch resumes and sees what changed.
TEST(EtcdSource, FrozenServerIsStaleThenResumes)
{
    REQUIRE_ETCD();
    EtcdServer etcd;
    ASSERT_TRUE(etcd.start()) << read_file(etcd.log_path());
    ASSERT_TRUE(etcd.put(kPrefix + "a", backend("10.0.0.1")));
    Recorder rec;
    SourceOptions options = fast_options();
    options.etcd_probe_interval = 300ms;
    options.etcd_probe_timeout = 300ms;
    auto src = make_source(etcd_service({etcd.url()}), rec.callback(), options);
    ASSERT_TRUE(src && (*src)->start());
    ASSERT_TRUE(rec.wait_for_text("10.0.0.1:80 w=100", kBound));
    // Probes pass while it serves: still ok after several intervals.
    std::this_thread::sleep_for(1500ms);
    EXPECT_EQ((*src)->status().state, SourceState::kOk) << (*src)->status().last_error;

    etcd.pause();
    EXPECT_TRUE(wait_until([&] { return (*src)->status().state == SourceState::kStale; }, 5s))
        << "state " << static_cast<int>((*src)->status().state);
    const auto st = (*src)->status();
    EXPECT_NE(st.last_error.find("liveness probe"), std::string::npos) << st.last_error;
    EXPECT_EQ(st.backend_count, 1u);
    EXPECT_EQ(rec.count(), 1u);

    etcd.resume();
    ASSERT_TRUE(etcd.put(kPrefix + "b", backend("10.0.0.2")));
    EXPECT_TRUE(rec.wait_for_text("10.0.0.1:80 w=100 10.0.0.2:80 w=100", kBound)) << rec.last_text();
    EXPECT_TRUE(wait_until([&] { return (*src)->status().state == SourceState::kOk; }, kBound));
    (*src)->stop();
}

// Changes plus a compaction while the watcher cannot connect: the resumed watch is refused
// as compacted, and a full re-read (the only way to see them now) brings the new set.
TEST(EtcdSource, CompactionForcesFullReread)
{
    REQUIRE_ETCD();
    EtcdServer etcd;
    ASSERT_TRUE(etcd.start()) << read_file(etcd.log_path());
    ASSERT_TRUE(etcd.put(kPrefix + "a", backend("10.0.0.1")));
    ASSERT_TRUE(etcd.put(kPrefix + "b", backend("10.0.0.2")));
    Recorder rec;
    auto src = make_source(etcd_service({etcd.url()}), rec.callback(), fast_options());
    ASSERT_TRUE(src && (*src)->start());
    ASSERT_TRUE(rec.wait_for_text("10.0.0.1:80 w=100 10.0.0.2:80 w=100", kBound));
    const auto seen_revision = (*src)->status().revision;

    // Same data, served on a port the watcher does not know.
    etcd.stop();
    const uint16_t hidden = free_port();
    ASSERT_TRUE(etcd.start(hidden)) << read_file(etcd.log_path());
    for (int i = 0; i < 20; ++i) {
        ASSERT_TRUE(etcd.put(kPrefix + "c", backend("10.0.0.3", 1 + i)));
    }
    ASSERT_TRUE(etcd.del(kPrefix + "a"));
    const int64_t now = etcd.revision();
    ASSERT_GT(now, static_cast<int64_t>(seen_revision) + 20);
    ASSERT_TRUE(etcd.ctl("compact " + std::to_string(now)).has_value());
    etcd.stop();
    ASSERT_TRUE(etcd.start()) << read_file(etcd.log_path());

    EXPECT_TRUE(rec.wait_for_text("10.0.0.2:80 w=100 10.0.0.3:80 w=20", kBound)) << rec.last_text();
    auto st = (*src)->status();
    EXPECT_NE(st.last_error.find("compacted"), std::string::npos) << st.last_error;
    EXPECT_EQ(st.revision, static_cast<uint64_t>(now));
    ASSERT_TRUE(wait_until([&] { return (*src)->status().state == SourceState::kOk; }, kBound));
    // Watching again from the re-read's revision.
    ASSERT_TRUE(etcd.put(kPrefix + "d", backend("10.0.0.4")));
    EXPECT_TRUE(rec.wait_for_text("10.0.0.2:80 w=100 10.0.0.3:80 w=20 10.0.0.4:80 w=100", kBound));
    (*src)->stop();
}

// A store restored to an older revision (here: wiped and rebuilt) is re-read instead of
// being watched from a revision it may never reach.
TEST(EtcdSource, StoreBehindSeenRevisionIsReread)
{
    REQUIRE_ETCD();
    EtcdServer etcd;
    ASSERT_TRUE(etcd.start()) << read_file(etcd.log_path());
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(etcd.put(kPrefix + "a", backend("10.0.0.1", 1 + i)));
    }
    Recorder rec;
    auto src = make_source(etcd_service({etcd.url()}), rec.callback(), fast_options());
    ASSERT_TRUE(src && (*src)->start());
    ASSERT_TRUE(rec.wait_for_text("10.0.0.1:80 w=5", kBound)) << rec.last_text();

    etcd.stop();
    etcd.wipe();
    ASSERT_TRUE(etcd.start()) << read_file(etcd.log_path());
    ASSERT_TRUE(etcd.put(kPrefix + "z", backend("10.0.0.26")));
    EXPECT_TRUE(rec.wait_for_text("10.0.0.26:80 w=100", kBound)) << rec.last_text();
    EXPECT_NE((*src)->status().last_error.find("behind"), std::string::npos) << (*src)->status().last_error;
    (*src)->stop();
}

// Never reachable: error (no set ever), no delivery, and stop() returns promptly mid-backoff.
TEST(EtcdSource, UnreachableIsErrorAndStopsPromptly)
{
    Recorder rec;
    auto src = make_source(etcd_service({"http://127.0.0.1:" + std::to_string(free_port())}), rec.callback(),
                           fast_options());
    ASSERT_TRUE(src && (*src)->start());
    ASSERT_TRUE(wait_until([&] { return (*src)->status().state == SourceState::kError; }, kBound));
    EXPECT_EQ(rec.count(), 0u);
    const auto t0 = std::chrono::steady_clock::now();
    (*src)->stop();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
}

// stop() ends a quiet, open watch stream at once (curl_multi_wakeup), not at the next event.
TEST(EtcdSource, StopInterruptsQuietWatch)
{
    REQUIRE_ETCD();
    EtcdServer etcd;
    ASSERT_TRUE(etcd.start()) << read_file(etcd.log_path());
    Recorder rec;
    auto src = make_source(etcd_service({etcd.url()}), rec.callback(), fast_options());
    ASSERT_TRUE(src && (*src)->start());
    ASSERT_TRUE(rec.wait_for_text("", kBound));  // an empty prefix is a real (empty) set
    ASSERT_TRUE(wait_until([&] { return (*src)->status().state == SourceState::kOk; }, kBound));
    std::this_thread::sleep_for(200ms);
    const auto t0 = std::chrono::steady_clock::now();
    (*src)->stop();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);
}

}  // namespace
}  // namespace sluice::discovery
