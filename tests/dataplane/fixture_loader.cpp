// Fixture table loading and comparison helpers (see fixture_loader.h).
#include "fixture_loader.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

extern "C" {
#include "abi/drop_reason.h"
#include "abi/tables.h"
#include "abi/wire.h"
}

namespace sluice::testing {

namespace {

Result<std::vector<uint8_t>> parse_hex(const std::string& hex)
{
    if (hex.size() % 2 != 0) return make_error("odd-length hex string");
    std::vector<uint8_t> out(hex.size() / 2);
    for (size_t i = 0; i < out.size(); ++i) {
        unsigned v = 0;
        if (std::sscanf(hex.c_str() + 2 * i, "%2x", &v) != 1) return make_error("bad hex at " + std::to_string(2 * i));
        out[i] = static_cast<uint8_t>(v);
    }
    return out;
}

Result<nlohmann::json> read_json(const std::string& path)
{
    std::ifstream in(path);
    if (!in) return make_error(path + ": cannot open");
    try {
        return nlohmann::json::parse(in);
    } catch (const std::exception& e) {
        return make_error(path + ": " + e.what());
    }
}

}  // namespace

bool parse_mac(const std::string& s, uint8_t mac[6])
{
    unsigned b[6];
    if (std::sscanf(s.c_str(), "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6) return false;
    for (int i = 0; i < 6; ++i) mac[i] = static_cast<uint8_t>(b[i]);
    return true;
}

// Address text to (family, zero-padded address); family 0 when invalid.
uint8_t parse_addr(const std::string& s, sluice_addr& out)
{
    out = {};
    if (inet_pton(AF_INET, s.c_str(), &out.v4) == 1) return SLUICE_FAMILY_IPV4;
    if (inet_pton(AF_INET6, s.c_str(), out.bytes) == 1) return SLUICE_FAMILY_IPV6;
    return 0;
}


std::string drop_label(uint8_t reason)
{
    static const char* const kLabels[] = {
#define SLUICE_DROP_LABEL_(name, label, text) label,
        SLUICE_DROP_REASONS(SLUICE_DROP_LABEL_)
#undef SLUICE_DROP_LABEL_
    };
    return reason < SLUICE_DROP_MAX ? kLabels[reason] : "unknown";
}

std::string verdict_string(const core::Verdict& v)
{
    switch (v.action) {
    case core::Action::kTx: return "tx:" + std::to_string(v.port);
    case core::Action::kException: return "exception";
    case core::Action::kControl: return "control";
    case core::Action::kDrop: return "drop:" + drop_label(v.reason);
    }
    return "invalid";
}

std::string account_string(const core::Verdict& v)
{
    if (v.counted_as_tx()) return "tx";
    if (v.action == core::Action::kException) return "exception";
    if (v.action == core::Action::kControl) return "control";
    return "drop:" + drop_label(v.reason);
}

std::string describe_difference(const std::vector<uint8_t>& expected, const uint8_t* actual, size_t actual_len)
{
    std::ostringstream os;
    if (expected.size() != actual_len) os << "length " << actual_len << ", expected " << expected.size() << "; ";
    const size_t n = std::min(expected.size(), actual_len);
    for (size_t i = 0; i < n; ++i) {
        if (expected[i] != actual[i]) {
            char buf[96];
            std::snprintf(buf, sizeof buf, "first difference at byte %zu: 0x%02x, expected 0x%02x", i, actual[i],
                          expected[i]);
            os << buf;
            return os.str();
        }
    }
    return os.str();
}

Result<std::unique_ptr<const core::ForwardingState>> build_state(const nlohmann::json& cfg)
{
    try {
        core::ForwardingStateBuilder b;
        sluice_addr a;
        if (cfg.contains("local_ipv4")) {
            if (parse_addr(cfg["local_ipv4"], a) != SLUICE_FAMILY_IPV4) return make_error("bad local_ipv4");
            b.set_local_ipv4(a);
        }
        if (cfg.contains("local_ipv6")) {
            if (parse_addr(cfg["local_ipv6"], a) != SLUICE_FAMILY_IPV6) return make_error("bad local_ipv6");
            b.set_local_ipv6(a);
        }
        b.set_exception_path(cfg.value("exception_path", true));
        b.set_icmp_error_limit(core::IcmpErrorLimit{cfg.value("icmp_errors_per_sec", core::kDefaultIcmpErrorLimit.per_sec),
                                                    cfg.value("icmp_errors_burst", core::kDefaultIcmpErrorLimit.burst)});
        for (const auto& p : cfg.at("ports")) {
            core::PortConfig pc{};
            if (!parse_mac(p.at("mac"), pc.mac) || !parse_mac(p.at("nexthop_mac"), pc.nexthop_mac))
                return make_error("port: bad MAC");
            pc.mtu = p.at("mtu").get<uint16_t>();
            pc.egress_port = p.at("egress_port").get<uint16_t>();
            b.add_port(p.at("id").get<uint16_t>(), pc);
        }
        for (const auto& j : cfg.at("backends")) {
            sluice_backend be{};
            be.family = parse_addr(j.at("addr"), be.addr);
            if (be.family == 0) return make_error("backend: bad address");
            if (!parse_mac(j.value("mac", "00:00:00:00:00:00"), be.mac)) return make_error("backend: bad MAC");
            for (const auto& f : j.value("flags", nlohmann::json::array())) {
                if (f == "valid") be.flags |= SLUICE_BACKEND_F_VALID;
                else if (f == "draining") be.flags |= SLUICE_BACKEND_F_DRAINING;
                else return make_error("backend: unknown flag");
            }
            b.add_backend(j.at("id").get<uint32_t>(), be);
        }
        for (const auto& j : cfg.at("vips")) {
            core::ForwardingStateBuilder::VipSpec v{};
            v.key.family = parse_addr(j.at("addr"), v.key.addr);
            if (v.key.family == 0) return make_error("vip: bad address");
            v.key.port = htons(j.at("port").get<uint16_t>());
            const std::string proto = j.at("proto");
            v.key.proto = proto == "tcp" ? SLUICE_IPPROTO_TCP : proto == "udp" ? SLUICE_IPPROTO_UDP : 0;
            v.vip_id = j.at("id").get<uint32_t>();
            const std::string fwd = j.at("forwarding");
            v.forwarding = fwd == "ipip" ? SLUICE_FWD_IPIP : fwd == "gue" ? SLUICE_FWD_GUE
                         : fwd == "l2dsr" ? SLUICE_FWD_L2DSR : SLUICE_FWD_MAX;
            v.gue_port = j.value("gue_port", uint16_t{0});
            for (const auto& f : j.value("flags", nlohmann::json::array())) {
                if (f == "hash_no_sport") v.flags |= SLUICE_VIP_F_HASH_NO_SPORT;
                else return make_error("vip: unknown flag");
            }
            std::vector<uint32_t> ring;
            for (const auto& r : j.at("ring")) ring.push_back(r.is_null() ? SLUICE_BACKEND_NONE : r.get<uint32_t>());
            v.ring = std::move(ring);
            b.add_vip(std::move(v));
        }
        return b.build();
    } catch (const std::exception& e) {
        return make_error(std::string("config: ") + e.what());
    }
}

Result<std::vector<const Fixture*>> prerequisites(const FixtureTable& table, const Fixture& fixture)
{
    std::vector<const Fixture*> out;
    for (const std::string& name : fixture.after) {
        const auto it = std::find_if(table.fixtures.begin(), table.fixtures.end(),
                                     [&](const Fixture& f) { return f.name == name; });
        if (it == table.fixtures.end()) return make_error(fixture.name + ": after names unknown fixture " + name);
        out.push_back(&*it);
    }
    return out;
}

Result<FixtureTable> load_fixture_table(const std::string& dir)
{
    auto doc = read_json(dir + "/packets.json");
    if (!doc) return make_error(doc.error());
    FixtureTable table;
    try {
        auto cfg = read_json(dir + "/" + doc->at("config").get<std::string>());
        if (!cfg) return make_error(cfg.error());
        table.base_config = *cfg;
        const uint32_t headroom = doc->at("headroom").get<uint32_t>();
        for (const auto& j : doc->at("fixtures")) {
            Fixture f;
            f.name = j.at("name");
            f.category = j.value("category", "");
            f.description = j.value("description", "");
            f.notes = j.value("notes", "");
            f.in_port = j.value("in_port", uint16_t{0});
            f.headroom = j.value("headroom", headroom);
            auto in = parse_hex(j.at("input"));
            if (!in) return make_error(f.name + ": input: " + in.error());
            f.input = std::move(*in);
            f.verdict = j.at("verdict");
            f.account = j.value("account", f.verdict.rfind("tx:", 0) == 0 ? std::string("tx") : f.verdict);
            if (j.contains("output")) {
                auto out = parse_hex(j.at("output"));
                if (!out) return make_error(f.name + ": output: " + out.error());
                f.output = std::move(*out);
                f.has_output = true;
            }
            f.backend = j.value("backend", -1);
            f.after = j.value("after", std::vector<std::string>{});
            f.xdp_expected = j.value("xdp_expected", nlohmann::json());
            f.config = table.base_config;
            if (j.contains("config_patch")) f.config.merge_patch(j.at("config_patch"));
            table.fixtures.push_back(std::move(f));
        }
    } catch (const std::exception& e) {
        return make_error(dir + "/packets.json: " + e.what());
    }
    return table;
}

}  // namespace sluice::testing
