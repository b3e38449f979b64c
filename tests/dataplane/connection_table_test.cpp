// The connection table's promises: established flows survive ring changes
// while their backend is valid, draining backends keep flows and get no new
// ones, removed backends' flows re-pick, entries age per protocol and TCP
// state, and a full table evicts boundedly and counts it. Tested both
// directly and through process_burst with republished snapshots.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <cstring>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "core/conn_table.h"
#include "core/pipeline.h"

extern "C" {
#include "abi/flow.h"
#include "abi/wire.h"
}

namespace sluice::core {
namespace {

constexpr uint64_t kEstablished = 1000;
constexpr uint64_t kTransitory = 100;
constexpr uint64_t kUdp = 300;

ConnectionTable::Config config(uint32_t capacity)
{
    return {capacity, kEstablished, kTransitory, kUdp};
}

sluice_flow_key tcp_key(uint32_t client, uint16_t sport, uint8_t proto = SLUICE_IPPROTO_TCP)
{
    sluice_flow_key k{};
    k.src.v4 = htonl(0xC6336400u + client);
    k.dst.v4 = htonl(0xC000020Au);
    k.sport = htons(sport);
    k.dport = htons(80);
    k.proto = proto;
    k.family = SLUICE_FAMILY_IPV4;
    return k;
}

auto all_valid = [](uint32_t) { return true; };

// Inserts or refreshes a flow whose pick would be `backend`.
ConnectionTable::LookupResult touch(ConnectionTable& t, const sluice_flow_key& k, uint64_t now, uint8_t flags,
                                    uint32_t backend = 7)
{
    return t.lookup_or_insert(k, sluice_flow_hash(&k), now, flags, all_valid, [&] { return backend; });
}

bool present(ConnectionTable& t, const sluice_flow_key& k, uint64_t now)
{
    return t.peek(k, sluice_flow_hash(&k), now) != nullptr;
}

// A hit returns the pinned backend even when the ring now says otherwise.
TEST(ConnectionTable, HitKeepsPinnedBackend)
{
    ConnectionTable t(config(64));
    const auto k = tcp_key(1, 1000);
    EXPECT_FALSE(touch(t, k, 10, SLUICE_TCP_SYN, 3).hit);
    const auto r = touch(t, k, 20, SLUICE_TCP_ACK, 5);
    EXPECT_TRUE(r.hit);
    EXPECT_EQ(r.backend_id, 3u);
}

// A pinned backend that is no longer valid is replaced by the pick, in
// place: the table does not grow and later packets hit the new backend.
TEST(ConnectionTable, InvalidBackendRepicksInPlace)
{
    ConnectionTable t(config(64));
    const auto k = tcp_key(1, 1000);
    touch(t, k, 10, SLUICE_TCP_SYN, 3);
    auto r = t.lookup_or_insert(k, sluice_flow_hash(&k), 20, SLUICE_TCP_ACK, [](uint32_t id) { return id != 3; },
                                [] { return 4u; });
    EXPECT_FALSE(r.hit);
    EXPECT_EQ(r.backend_id, 4u);
    EXPECT_EQ(t.size(), 1u);
    EXPECT_EQ(touch(t, k, 30, SLUICE_TCP_ACK, 9).backend_id, 4u);
}

// No entry is made for a flow the ring cannot serve.
TEST(ConnectionTable, NoEntryWithoutBackend)
{
    ConnectionTable t(config(64));
    const auto r = touch(t, tcp_key(1, 1000), 10, SLUICE_TCP_SYN, SLUICE_BACKEND_NONE);
    EXPECT_EQ(r.backend_id, SLUICE_BACKEND_NONE);
    EXPECT_EQ(t.size(), 0u);
}

// UDP entries live kUdp ticks after their last packet; each packet renews.
TEST(ConnectionTable, UdpAging)
{
    ConnectionTable t(config(64));
    const auto k = tcp_key(1, 53, SLUICE_IPPROTO_UDP);
    touch(t, k, 1000, 0);
    EXPECT_TRUE(present(t, k, 1000 + kUdp - 1));
    touch(t, k, 1000 + kUdp - 1, 0);
    EXPECT_TRUE(present(t, k, 1000 + 2 * kUdp - 2));
    EXPECT_FALSE(present(t, k, 1000 + 2 * kUdp - 1));
}

// Another thread's view (sluicectl lookup): the worker may touch an entry
// after the reader took its clock, so an entry seen ahead of the reader's
// `now` is live; behind it, the owner's rule applies. The XDP driver judges
// the program's entries with the same rule (sluice_conn_live_for_reader).
TEST(ConnectionTable, ReaderSeesEntryTouchedAfterItsClock)
{
    ConnectionTable t(config(64));
    const auto k = tcp_key(1, 1000);
    touch(t, k, 5000, SLUICE_TCP_SYN, 3);
    touch(t, k, 5010, SLUICE_TCP_ACK, 3);
    const uint32_t h = sluice_flow_hash(&k);
    ASSERT_TRUE(t.peek_copy(k, h, 4000).has_value());  // last_seen 5010 > now 4000: touched meanwhile
    EXPECT_EQ(t.peek_copy(k, h, 4000)->backend_id, 3u);
    EXPECT_TRUE(t.peek_copy(k, h, 5010 + kEstablished - 1).has_value());
    EXPECT_FALSE(t.peek_copy(k, h, 5010 + kEstablished).has_value());
    EXPECT_TRUE(sluice_conn_live_for_reader(10, 5, 0));  // ahead: live even with a zero timeout
    EXPECT_FALSE(sluice_conn_live_for_reader(10, 10, 0));
    EXPECT_TRUE(sluice_conn_live_for_reader(10, 19, 10));
    EXPECT_FALSE(sluice_conn_live_for_reader(10, 20, 10));
}

// A SYN-only entry is transitory; once the handshake's ACK arrives it lives
// for the established timeout.
TEST(ConnectionTable, TcpTransitoryThenEstablished)
{
    ConnectionTable t(config(64));
    const auto syn_only = tcp_key(1, 1000);
    touch(t, syn_only, 1000, SLUICE_TCP_SYN);
    EXPECT_FALSE(present(t, syn_only, 1000 + kTransitory));

    const auto k = tcp_key(2, 1000);
    touch(t, k, 1000, SLUICE_TCP_SYN);
    touch(t, k, 1010, SLUICE_TCP_ACK);
    EXPECT_TRUE(present(t, k, 1010 + kTransitory));
    EXPECT_TRUE(present(t, k, 1010 + kEstablished - 1));
    EXPECT_FALSE(present(t, k, 1010 + kEstablished));
}

// FIN and RST cut an established entry's life to the transitory timeout,
// and the ACKs that finish the close do not lengthen it again.
TEST(ConnectionTable, FinAndRstShortenLife)
{
    for (uint8_t closing : {uint8_t{SLUICE_TCP_FIN | SLUICE_TCP_ACK}, uint8_t{SLUICE_TCP_RST}}) {
        ConnectionTable t(config(64));
        const auto k = tcp_key(1, 1000);
        touch(t, k, 1000, SLUICE_TCP_SYN);
        touch(t, k, 1001, SLUICE_TCP_ACK);
        touch(t, k, 1002, closing);
        touch(t, k, 1003, SLUICE_TCP_ACK);
        EXPECT_TRUE(present(t, k, 1003 + kTransitory - 1));
        EXPECT_FALSE(present(t, k, 1003 + kTransitory)) << int(closing);
    }
}

// A flow whose entry expired is a new flow: it reuses its own slot (no
// duplicate key in the bucket) and takes the current pick.
TEST(ConnectionTable, ExpiredEntryReusedInPlace)
{
    ConnectionTable t(config(64));
    const auto k = tcp_key(1, 53, SLUICE_IPPROTO_UDP);
    touch(t, k, 1000, 0, 3);
    const auto r = touch(t, k, 1000 + kUdp, 0, 5);
    EXPECT_FALSE(r.hit);
    EXPECT_EQ(r.backend_id, 5u);
    EXPECT_EQ(t.size(), 1u);
    EXPECT_TRUE(touch(t, k, 1000 + kUdp + 1, 0, 9).hit);
}

// A lookup (ICMP errors) neither creates nor refreshes entries.
TEST(ConnectionTable, LookupIsReadOnly)
{
    ConnectionTable t(config(64));
    const auto k = tcp_key(1, 53, SLUICE_IPPROTO_UDP);
    EXPECT_EQ(t.lookup(k, sluice_flow_hash(&k), 10, all_valid), SLUICE_BACKEND_NONE);
    EXPECT_EQ(t.size(), 0u);
    touch(t, k, 1000, 0, 3);
    EXPECT_EQ(t.lookup(k, sluice_flow_hash(&k), 1000 + kUdp - 1, all_valid), 3u);
    EXPECT_EQ(t.lookup(k, sluice_flow_hash(&k), 1000 + kUdp, all_valid), SLUICE_BACKEND_NONE);
}

// With one 8-way bucket, 20 live flows evict exactly 12 entries, each time
// the least recently seen, and the table never holds more than 8.
TEST(ConnectionTable, EvictionIsBoundedCountedAndLru)
{
    ConnectionTable t(config(8));
    ASSERT_EQ(t.capacity(), 8u);
    int evictions = 0;
    for (uint16_t i = 0; i < 20; ++i) {
        evictions += touch(t, tcp_key(1, static_cast<uint16_t>(1000 + i)), 100 + i, SLUICE_TCP_ACK).evicted;
        EXPECT_LE(t.size(), t.capacity());
    }
    EXPECT_EQ(evictions, 12);
    for (uint16_t i = 0; i < 20; ++i)
        EXPECT_EQ(present(t, tcp_key(1, static_cast<uint16_t>(1000 + i)), 120), i >= 12) << i;
}

// Expired entries are reclaimed before any live one is evicted.
TEST(ConnectionTable, ExpiredReclaimedBeforeEviction)
{
    ConnectionTable t(config(8));
    for (uint16_t i = 0; i < 8; ++i) touch(t, tcp_key(1, static_cast<uint16_t>(1000 + i)), 100, SLUICE_TCP_SYN);
    touch(t, tcp_key(1, 1000), 150, SLUICE_TCP_ACK);  // established: outlives the 7 SYN-only ones
    for (uint16_t i = 0; i < 7; ++i)
        EXPECT_FALSE(touch(t, tcp_key(3, static_cast<uint16_t>(i)), 100 + kTransitory, SLUICE_TCP_ACK).evicted);
    EXPECT_TRUE(present(t, tcp_key(1, 1000), 100 + kTransitory));
    EXPECT_EQ(t.size(), 8u);
}

// Under a random flood far beyond capacity the size stays within capacity
// and every insertion beyond it is an eviction.
TEST(ConnectionTable, CapacityNeverExceeded)
{
    ConnectionTable t({1000, ~0ull, ~0ull, ~0ull});  // nothing expires: every reuse is an eviction
    EXPECT_EQ(t.capacity(), 1024u);
    std::mt19937 rng(42);
    uint64_t evictions = 0, inserts = 0;
    for (uint64_t now = 1; now <= 20000; ++now) {
        const auto r = touch(t, tcp_key(rng(), static_cast<uint16_t>(rng())), now, SLUICE_TCP_ACK);
        inserts += !r.hit;
        evictions += r.evicted;
        ASSERT_LE(t.size(), t.capacity());
    }
    EXPECT_EQ(t.size(), t.capacity());  // hashing spreads well enough to fill every way
    EXPECT_EQ(inserts - evictions, t.size());
}

// The census counts live entries: exactly when it reads every bucket, and
// not the ones idle past their state's timeout.
TEST(ConnectionTableCensus, ExactOnSmallTableAndAgesOut)
{
    ConnectionTable t(config(4096));  // 512 buckets: all read
    for (uint16_t i = 0; i < 300; ++i) touch(t, tcp_key(i, 1000), 10, SLUICE_TCP_ACK);       // established
    for (uint16_t i = 0; i < 50; ++i) touch(t, tcp_key(i, 2000), 10, SLUICE_TCP_SYN);        // transitory
    for (uint16_t i = 0; i < 40; ++i) touch(t, tcp_key(i, 3000, SLUICE_IPPROTO_UDP), 10, 0); // UDP
    ConnCensus c = t.census(20);
    EXPECT_EQ(c.capacity, 4096u);
    EXPECT_EQ(c.sampled, 4096u);
    EXPECT_EQ(c.live, 390u);
    EXPECT_EQ(c.live_estimate(), 390u);
    EXPECT_EQ(t.census(10 + kTransitory).live, 340u);  // the SYN-only entries aged out
    EXPECT_EQ(t.census(10 + kUdp).live, 300u);         // then the UDP ones
    EXPECT_EQ(t.census(10 + kEstablished).live, 0u);
    // A reader's clock read before the owner's last touch still sees it live.
    EXPECT_EQ(t.census(5).live, 390u);
}

// On a table larger than the sample, the estimate from evenly spaced
// buckets is within the documented ±1.1% of the capacity (here 4 standard
// deviations of the binomial sample are ±2.2%; the flows are fixed, so the
// figure is too).
TEST(ConnectionTableCensus, SampledEstimateOnLargeTable)
{
    ConnectionTable t(config(131072));  // 16384 buckets, 1024 read
    std::mt19937 rng(7);
    for (int i = 0; i < 50000; ++i) touch(t, tcp_key(rng(), static_cast<uint16_t>(rng())), 10, SLUICE_TCP_ACK);
    const ConnCensus exact = t.census(20, 16384);
    EXPECT_EQ(exact.sampled, 131072u);
    EXPECT_EQ(exact.live, t.size());  // nothing expired, every entry live
    const ConnCensus c = t.census(20);
    EXPECT_EQ(c.sampled, kConnCensusBuckets * ConnectionTable::kWays);
    EXPECT_NEAR(static_cast<double>(c.live_estimate()), static_cast<double>(exact.live), 0.022 * 131072);
    EXPECT_GT(c.live, 0u);
    EXPECT_LT(c.live, c.sampled);
}

// Entries forgotten by the XDP loader (backend NONE) and unused ways do not
// count, whatever their timestamps; the timeout is the entry state's.
TEST(ConnectionTableCensus, SkipsForgottenAndUnusedWays)
{
    std::vector<sluice_conn_bucket> buckets(2);
    std::memset(buckets.data(), 0, buckets.size() * sizeof(sluice_conn_bucket));
    const uint64_t timeout[SLUICE_CONN_STATES] = {100, 1000, 100, 300};
    buckets[0].used = 0x7;
    buckets[0].entries[0] = {tcp_key(1, 1), 3, SLUICE_CONN_TCP_ESTABLISHED, {}, 500};
    buckets[0].entries[1] = {tcp_key(2, 1), SLUICE_BACKEND_NONE, SLUICE_CONN_TCP_ESTABLISHED, {}, 500};
    buckets[0].entries[2] = {tcp_key(3, 1), 4, SLUICE_CONN_TCP_TRANSITORY, {}, 500};
    buckets[0].entries[3] = {tcp_key(4, 1), 5, SLUICE_CONN_TCP_ESTABLISHED, {}, 500};  // way not used
    buckets[1].used = 0x80;
    buckets[1].entries[7] = {tcp_key(5, 1), 6, SLUICE_CONN_UDP, {}, 500};
    EXPECT_EQ(conn_census(buckets.data(), 2, 550, timeout).live, 3u);
    EXPECT_EQ(conn_census(buckets.data(), 2, 650, timeout).live, 2u);  // transitory expired
    EXPECT_EQ(conn_census(buckets.data(), 2, 850, timeout).live, 1u);  // UDP expired
    const ConnCensus none = conn_census(buckets.data(), 0, 550, timeout);
    EXPECT_EQ(none.capacity, 0u);
    EXPECT_EQ(none.live_estimate(), 0u);
}

// The per-backend count walks every bucket: exact on a table larger than
// the census's sample, live entries only, forgotten ones skipped.
TEST(ConnectionTableCensus, CountsLiveEntriesPerBackend)
{
    ConnectionTable t(config(131072));  // 16384 buckets
    for (uint16_t i = 0; i < 500; ++i) touch(t, tcp_key(i, 1000), 10, SLUICE_TCP_ACK, 3);   // established
    for (uint16_t i = 0; i < 200; ++i) touch(t, tcp_key(i, 2000), 10, SLUICE_TCP_SYN, 3);   // half-open
    for (uint16_t i = 0; i < 70; ++i) touch(t, tcp_key(i, 3000), 10, SLUICE_TCP_ACK, 7);
    std::vector<uint64_t> counts(SLUICE_MAX_BACKENDS);
    t.count_by_backend(20, counts.data());
    EXPECT_EQ(counts[3], 700u);
    EXPECT_EQ(counts[7], 70u);
    EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), uint64_t{0}), 770u);
    std::fill(counts.begin(), counts.end(), 0);
    t.count_by_backend(10 + kTransitory, counts.data());  // the half-open ones aged out
    EXPECT_EQ(counts[3], 500u);
    EXPECT_EQ(counts[7], 70u);

    std::vector<sluice_conn_bucket> buckets(1);
    std::memset(buckets.data(), 0, sizeof(sluice_conn_bucket));
    buckets[0].used = 0x3;
    buckets[0].entries[0] = {tcp_key(1, 1), SLUICE_BACKEND_NONE, SLUICE_CONN_TCP_ESTABLISHED, {}, 500};
    buckets[0].entries[1] = {tcp_key(2, 1), 9, SLUICE_CONN_TCP_ESTABLISHED, {}, 500};
    const uint64_t timeout[SLUICE_CONN_STATES] = {100, 1000, 100, 300};
    std::fill(counts.begin(), counts.end(), 0);
    conn_count_by_backend(buckets.data(), 1, 550, timeout, counts.data());
    EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), uint64_t{0}), 1u);  // the forgotten one skipped
    EXPECT_EQ(counts[9], 1u);
}

// ---- through the pipeline, with republished snapshots ----

// A 4in4 IPIP service at 192.0.2.10:80 over backends 10.1.0.{10+id}.
std::unique_ptr<const ForwardingState> make_state(const std::vector<uint32_t>& ring,
                                                  const std::map<uint32_t, uint8_t>& backend_flags)
{
    ForwardingStateBuilder b;
    sluice_addr local{};
    local.v4 = htonl(0x0A000001u);
    b.set_local_ipv4(local);
    PortConfig p{};
    p.mac[0] = 2;
    p.nexthop_mac[0] = 2;
    p.nexthop_mac[5] = 0xFE;
    p.mtu = 1500;
    b.add_port(0, p);
    for (const auto& [id, flags] : backend_flags) {
        sluice_backend be{};
        be.addr.v4 = htonl(0x0A01000Au + id);
        be.family = SLUICE_FAMILY_IPV4;
        be.flags = flags;
        b.add_backend(id, be);
    }
    ForwardingStateBuilder::VipSpec v{};
    v.key.addr.v4 = htonl(0xC000020Au);
    v.key.port = htons(80);
    v.key.proto = SLUICE_IPPROTO_TCP;
    v.key.family = SLUICE_FAMILY_IPV4;
    v.vip_id = 0;
    v.forwarding = SLUICE_FWD_IPIP;
    v.ring = ring;
    b.add_vip(v);
    auto st = b.build();
    EXPECT_TRUE(st.ok()) << st.error();
    return std::move(*st);
}

// Sends one TCP packet of flow `client_port` and returns the backend id it
// was sent to (from the outer destination), or -1 if not forwarded.
int send(Worker& w, const ForwardingState& st, uint16_t client_port, uint8_t flags, uint64_t now)
{
    std::vector<uint8_t> buf(128 + 54, 0);
    uint8_t* f = buf.data() + 128;
    const uint8_t frame[54] = {
        2, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0xC1, 1, 0x08, 0x00,                              // Ethernet
        0x45, 0, 0, 40, 0, 1, 0x40, 0, 57, 6, 0, 0, 198, 51, 100, 7, 192, 0, 2, 10,     // IPv4
        static_cast<uint8_t>(client_port >> 8), static_cast<uint8_t>(client_port), 0, 80,  // ports
        0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xFF, 0xFF, 0, 0, 0, 0};                   // TCP
    std::memcpy(f, frame, sizeof frame);
    Packet pkt{f, sizeof frame, 128, 0, 0};
    Packet* pkts[1] = {&pkt};
    Verdict v[1];
    process_burst(w, pkts, 1, st, now, v);
    if (!v[0].counted_as_tx()) return -1;
    return static_cast<int>(pkt.data[14 + 19] - 10);  // outer daddr 10.1.0.(10+id)
}

constexpr uint8_t kValid = SLUICE_BACKEND_F_VALID;
constexpr uint8_t kDraining = SLUICE_BACKEND_F_VALID | SLUICE_BACKEND_F_DRAINING;

// Removing backend 2 and republishing moves only backend 2's established
// flows (they re-pick from the new ring); every other flow stays, although
// the new ring would send many of them elsewhere.
TEST(ConnectionTablePipeline, RemovedBackendOnlyItsFlowsMove)
{
    Worker w(config(4096));
    const auto before = make_state({0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2}, {{0, kValid}, {1, kValid}, {2, kValid}, {3, kValid}});
    std::map<uint16_t, int> pinned;
    for (uint16_t p = 1000; p < 1400; ++p) {
        ASSERT_GE(send(w, *before, p, SLUICE_TCP_SYN, 10), 0);
        pinned[p] = send(w, *before, p, SLUICE_TCP_ACK, 11);
    }
    // Backend 2 removed: absent from the table and from a reshuffled ring.
    const auto after = make_state({3, 1, 0, 3, 1, 0, 3, 1, 0, 3, 1}, {{0, kValid}, {1, kValid}, {3, kValid}});
    Worker fresh(config(4096));
    int moved_by_ring = 0;
    for (const auto& [port, backend] : pinned) {
        const int now_backend = send(w, *after, port, SLUICE_TCP_ACK, 12);
        const int ring_choice = send(fresh, *after, port, SLUICE_TCP_ACK, 12);
        if (backend == 2) {
            EXPECT_EQ(now_backend, ring_choice) << port;
        } else {
            EXPECT_EQ(now_backend, backend) << port;
            moved_by_ring += ring_choice != backend;
        }
    }
    EXPECT_GT(moved_by_ring, 50);  // the test would notice a table that ignores its entries
    EXPECT_EQ(w.stats.drops[SLUICE_DROP_NO_BACKEND], 0u);
}

// A draining backend (valid, out of the ring) keeps its established flows
// and receives no new ones.
TEST(ConnectionTablePipeline, DrainingKeepsFlowsTakesNoNew)
{
    Worker w(config(4096));
    const auto before = make_state({0, 1, 2}, {{0, kValid}, {1, kValid}, {2, kValid}});
    std::map<uint16_t, int> pinned;
    for (uint16_t p = 2000; p < 2300; ++p) pinned[p] = send(w, *before, p, SLUICE_TCP_SYN, 10);
    const auto draining = make_state({0, 1, 0}, {{0, kValid}, {1, kValid}, {2, kDraining}});
    int kept_on_draining = 0;
    for (const auto& [port, backend] : pinned) {
        EXPECT_EQ(send(w, *draining, port, SLUICE_TCP_ACK, 20), backend);
        kept_on_draining += backend == 2;
    }
    EXPECT_GT(kept_on_draining, 50);
    for (uint16_t p = 5000; p < 5300; ++p) EXPECT_NE(send(w, *draining, p, SLUICE_TCP_SYN, 20), 2) << p;
}

// A new connection that reuses the 5-tuple of a live entry pinned to a
// draining backend (a pure SYN: port reuse) is picked again from the ring;
// the old connection's own packets (ACK, FIN) kept it until then. A SYN
// whose entry names a backend that is not draining keeps it.
TEST(ConnectionTablePipeline, SynOnDrainingEntryIsPickedAgain)
{
    Worker w(config(4096));
    const auto before = make_state({0, 1, 2}, {{0, kValid}, {1, kValid}, {2, kValid}});
    std::map<uint16_t, int> pinned;
    for (uint16_t p = 3000; p < 3300; ++p) pinned[p] = send(w, *before, p, SLUICE_TCP_SYN, 10);
    const auto draining = make_state({0, 1, 0}, {{0, kValid}, {1, kValid}, {2, kDraining}});
    int repicked = 0;
    for (const auto& [port, backend] : pinned) {
        EXPECT_EQ(send(w, *draining, port, SLUICE_TCP_ACK | SLUICE_TCP_FIN, 20), backend) << port;
        const int again = send(w, *draining, port, SLUICE_TCP_SYN, 21);
        if (backend == 2) {
            EXPECT_NE(again, 2) << port;
            // The entry now names the new pick: the new connection stays there.
            EXPECT_EQ(send(w, *draining, port, SLUICE_TCP_ACK, 22), again) << port;
            ++repicked;
        } else {
            EXPECT_EQ(again, backend) << port;
        }
    }
    EXPECT_GT(repicked, 50);
}

// Counters: first packet of a flow is a miss, later ones hits; an
// established flow's entry outlives a UDP-length idle period.
TEST(ConnectionTablePipeline, HitMissCounters)
{
    Worker w(config(1024));
    const auto st = make_state({0, 1, 2}, {{0, kValid}, {1, kValid}, {2, kValid}});
    send(w, *st, 1000, SLUICE_TCP_SYN, 10);
    send(w, *st, 1000, SLUICE_TCP_ACK, 11);
    send(w, *st, 1000, SLUICE_TCP_ACK, 11 + kUdp);
    EXPECT_EQ(w.stats.conn_misses, 1u);
    EXPECT_EQ(w.stats.conn_hits, 2u);
    send(w, *st, 1000, SLUICE_TCP_ACK, 11 + kUdp + kEstablished);
    EXPECT_EQ(w.stats.conn_misses, 2u);
}

}  // namespace
}  // namespace sluice::core
