// Proves that the flow hash compiled for BPF (the XDP data plane) and for
// C++ (the DPDK data plane) agree bit for bit, so a flow picks the same
// Maglev slot and GUE source port whichever node kind receives it. The BPF
// side runs in the kernel through BPF_PROG_TEST_RUN; the expected values
// come from the C++ build of the same header, never from constants.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "test_env.h"

extern "C" {
#include "abi/flow.h"
#include "abi/wire.h"
#include "flow_hash_record.h"
}

#include "flow_hash_prog.skel.h"

namespace {

constexpr int kRandomKeysPerFamily = 10000;
constexpr int kRawRandomKeys = 2000;
// BPF_PROG_TEST_RUN wants at least an Ethernet header; short batches are
// padded to a minimum Ethernet frame, like a real packet.
constexpr size_t kMinPacket = 64;

static_assert(sizeof(flow_hash_record) == 48, "records must tile the packet without padding");

// The seed is printed so a failure can be replayed: SLUICE_TEST_SEED=N.
uint64_t test_seed()
{
    if (const char* env = std::getenv("SLUICE_TEST_SEED"); env != nullptr && *env != '\0') {
        return std::strtoull(env, nullptr, 0);
    }
    return (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
}

sluice_flow_key random_key(std::mt19937_64& rng, uint8_t family)
{
    sluice_flow_key key{};
    if (family == SLUICE_FAMILY_IPV4) {
        key.src.v4 = static_cast<__be32>(rng());
        key.dst.v4 = static_cast<__be32>(rng());
    } else {
        for (int i = 0; i < 4; ++i) {
            key.src.v6[i] = static_cast<__be32>(rng());
            key.dst.v6[i] = static_cast<__be32>(rng());
        }
    }
    // One key in 16 is a fragment: ports zero, as the data planes build it.
    const bool fragment = (rng() & 15) == 0;
    key.sport = fragment ? 0 : static_cast<__be16>(rng());
    key.dport = fragment ? 0 : static_cast<__be16>(rng());
    key.proto = (rng() & 1) ? SLUICE_IPPROTO_TCP : SLUICE_IPPROTO_UDP;
    key.family = family;
    return key;
}

// Keys the generators are unlikely to produce: extremes, fragments with
// every port zero, and IPv4 keys whose unused address bytes are not zero
// (the hash must ignore them on both sides alike).
std::vector<sluice_flow_key> edge_keys()
{
    std::vector<sluice_flow_key> keys;
    sluice_flow_key zero{};
    keys.push_back(zero);
    sluice_flow_key ones;
    std::memset(&ones, 0xff, sizeof(ones));
    keys.push_back(ones);
    for (uint8_t family : {SLUICE_FAMILY_IPV4, SLUICE_FAMILY_IPV6}) {
        for (uint8_t proto : {SLUICE_IPPROTO_TCP, SLUICE_IPPROTO_UDP}) {
            sluice_flow_key fragment{};
            fragment.family = family;
            fragment.proto = proto;
            std::memset(fragment.src.bytes, 0xab, family == SLUICE_FAMILY_IPV4 ? 4 : 16);
            std::memset(fragment.dst.bytes, 0x5c, family == SLUICE_FAMILY_IPV4 ? 4 : 16);
            keys.push_back(fragment);  // ports 0

            sluice_flow_key max = fragment;
            std::memset(max.src.bytes, 0xff, family == SLUICE_FAMILY_IPV4 ? 4 : 16);
            std::memset(max.dst.bytes, 0xff, family == SLUICE_FAMILY_IPV4 ? 4 : 16);
            max.sport = 0xffff;
            max.dport = 0xffff;
            keys.push_back(max);
        }
    }
    sluice_flow_key v4_dirty{};
    std::memset(&v4_dirty, 0x77, sizeof(v4_dirty));
    v4_dirty.family = SLUICE_FAMILY_IPV4;
    keys.push_back(v4_dirty);
    return keys;
}

class BpfFlowHash {
public:
    BpfFlowHash() : skel_(flow_hash_prog__open_and_load()) {}
    BpfFlowHash(const BpfFlowHash&) = delete;
    BpfFlowHash& operator=(const BpfFlowHash&) = delete;
    ~BpfFlowHash() { flow_hash_prog__destroy(skel_); }

    bool loaded() const { return skel_ != nullptr; }

    // Runs the program once over `records` (at most FLOW_HASH_BATCH) and
    // leaves its output in place. Returns an error message or "".
    std::string run(std::vector<flow_hash_record>& records)
    {
        std::vector<uint8_t> in(std::max(kMinPacket, records.size() * sizeof(flow_hash_record)), 0);
        std::memcpy(in.data(), records.data(), records.size() * sizeof(flow_hash_record));
        std::vector<uint8_t> out(in.size(), 0);

        LIBBPF_OPTS(bpf_test_run_opts, opts);
        opts.data_in = in.data();
        opts.data_size_in = static_cast<uint32_t>(in.size());
        opts.data_out = out.data();
        opts.data_size_out = static_cast<uint32_t>(out.size());
        opts.repeat = 1;
        const int rc = bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.flow_hash_batch), &opts);
        if (rc != 0) {
            return "bpf_prog_test_run_opts: " + std::string(std::strerror(-rc));
        }
        if (opts.retval != XDP_PASS) {
            return "program returned " + std::to_string(opts.retval);
        }
        if (opts.data_size_out != in.size()) {
            return "data_out has " + std::to_string(opts.data_size_out) + " bytes, sent " +
                   std::to_string(in.size());
        }
        std::memcpy(records.data(), out.data(), records.size() * sizeof(flow_hash_record));
        return "";
    }

private:
    flow_hash_prog* skel_;
};

std::string describe(const sluice_flow_key& key)
{
    static constexpr char kHex[] = "0123456789abcdef";
    const auto* bytes = reinterpret_cast<const uint8_t*>(&key);
    std::string text;
    for (size_t i = 0; i < sizeof(key); ++i) {
        text += kHex[bytes[i] >> 4];
        text += kHex[bytes[i] & 15];
    }
    return text;
}

// Over 20,000+ random IPv4/IPv6 TCP/UDP keys, raw random bytes and edge
// keys, the kernel-run BPF build of sluice_flow_hash and sluice_gue_sport
// returns exactly what the C++ build returns for the same key bytes.
TEST(FlowHashParity, BpfMatchesCppOnRandomAndEdgeKeys)
{
    SLUICE_REQUIRE_ROOT();
    const auto started = std::chrono::steady_clock::now();
    const uint64_t seed = test_seed();
    std::cout << "flow hash parity seed: " << seed << " (replay with SLUICE_TEST_SEED=" << seed << ")\n";
    RecordProperty("seed", std::to_string(seed));
    std::mt19937_64 rng(seed);

    BpfFlowHash bpf;
    ASSERT_TRUE(bpf.loaded()) << "flow_hash_prog__open_and_load: " << std::strerror(errno);

    std::vector<sluice_flow_key> keys = edge_keys();
    const size_t edge_count = keys.size();
    for (int i = 0; i < kRandomKeysPerFamily; ++i) {
        keys.push_back(random_key(rng, SLUICE_FAMILY_IPV4));
        keys.push_back(random_key(rng, SLUICE_FAMILY_IPV6));
    }
    // Raw random bytes: any family byte, dirty unused bytes and pad. The
    // data planes never build such keys; agreeing on them shows the two
    // builds share the code path, not just the common inputs.
    for (int i = 0; i < kRawRandomKeys; ++i) {
        sluice_flow_key key;
        auto* bytes = reinterpret_cast<uint8_t*>(&key);
        for (size_t b = 0; b < sizeof(key); ++b) {
            bytes[b] = static_cast<uint8_t>(rng());
        }
        keys.push_back(key);
    }

    size_t compared = 0;
    size_t mismatches = 0;
    for (size_t first = 0; first < keys.size(); first += FLOW_HASH_BATCH) {
        const size_t count = std::min<size_t>(FLOW_HASH_BATCH, keys.size() - first);
        std::vector<flow_hash_record> records(count);
        for (size_t i = 0; i < count; ++i) {
            records[i].key = keys[first + i];
        }
        const std::string error = bpf.run(records);
        ASSERT_EQ(error, "") << "batch at key " << first;

        for (size_t i = 0; i < count; ++i) {
            const sluice_flow_key& key = keys[first + i];
            const uint32_t want_hash = sluice_flow_hash(&key);
            const uint16_t want_sport = sluice_gue_sport(want_hash);
            ASSERT_EQ(std::memcmp(&records[i].key, &key, sizeof(key)), 0) << "program changed key " << first + i;
            ASSERT_EQ(records[i].done, 1) << "program skipped key " << first + i;
            ++compared;
            if (records[i].hash != want_hash || records[i].gue_sport != want_sport) {
                if (++mismatches <= 10) {
                    ADD_FAILURE() << "key " << first + i << " " << describe(key) << ": bpf hash 0x" << std::hex
                                  << records[i].hash << " sport " << std::dec << records[i].gue_sport
                                  << ", C++ hash 0x" << std::hex << want_hash << " sport " << std::dec
                                  << want_sport;
                }
            }
        }
    }
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    std::cout << "compared " << compared << " keys (" << edge_count << " edge, " << kRandomKeysPerFamily
              << " IPv4, " << kRandomKeysPerFamily << " IPv6, " << kRawRandomKeys << " raw) in "
              << elapsed.count() << " ms; mismatches: " << mismatches << "\n";
    EXPECT_EQ(mismatches, 0u);
    EXPECT_EQ(compared, keys.size());
}

}  // namespace
