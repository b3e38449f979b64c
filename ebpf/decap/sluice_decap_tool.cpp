// sluice-decap-tool: attaches tc_decap.bpf.o to a device's clsact ingress,
// detaches it and prints its counters. scripts/sluice-decap is the front end.
//
// Why a C++ loader rather than `tc ... bpf obj` plus `bpftool map update`:
// the configuration (GUE port, VIP filter) goes into .rodata before load and
// the address maps are filled through this process's file descriptors before
// the program is attached, so a packet never meets a half-configured program,
// nothing is pinned, and no bpffs is needed (`ip netns exec` remounts /sys,
// which hides or replaces /sys/fs/bpf). Later commands find the program
// through the tc filter (handle and priority below) and its map ids.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if_arp.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

extern "C" {
#include "abi/tables.h"
#include "abi/wire.h"
#include "decap/decap_abi.h"
}

namespace {

// Our filter's identity on the ingress hook: fixed so that attach replaces
// it in place (atomically, no window without decapsulation) and detach and
// stats find it. Priority 1 runs it before other classifiers, so they see
// the inner packet.
constexpr uint32_t kFilterHandle = 0x51ce;
constexpr uint32_t kFilterPriority = 1;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

constexpr const char* kUsage = R"(usage:
  sluice-decap attach DEV --local ADDR [--local ADDR...] [--vip ADDR...]
                          [--gue-port N] [--obj PATH]
  sluice-decap detach DEV
  sluice-decap stats DEV [--json]
  sluice-decap --help

Backend-side decapsulation of sluice's IPIP (4in4, 6in6, 4in6, 6in4) and GUE
(variant 0 and 1) packets on hosts without ipip/fou modules: a tc clsact
ingress BPF program strips the outer headers of packets addressed to one of
the --local addresses, so the inner packet reaches the socket bound to the VIP
on loopback. Everything else passes untouched.

  attach   load the program and attach it to DEV's ingress (replaces ours if
           already attached: run it again to change the configuration)
    --local ADDR   outer destination to accept (IPv4 or IPv6; repeatable;
                   at least one)
    --vip ADDR     decapsulate only packets whose inner destination is one of
                   these (repeatable; default: any inner destination)
    --gue-port N   UDP destination port of GUE (default 6080)
    --obj PATH     BPF object (default: tc_decap.bpf.o next to this tool)
  detach   remove the program from DEV (no error if it is not attached)
  stats    print packets and bytes per outcome, summed over CPUs

Exit status: 0 success, 1 failure, 2 usage error.
)";

// A failure with a message for the operator; empty means success.
class [[nodiscard]] Status {
public:
    static Status ok() { return Status(); }
    static Status error(std::string message) { return Status(std::move(message)); }
    bool failed() const { return failed_; }
    const std::string& message() const { return message_; }

private:
    Status() = default;
    explicit Status(std::string message) : failed_(true), message_(std::move(message)) {}
    bool failed_ = false;
    std::string message_;
};

std::string errno_text(int err)
{
    return std::strerror(err < 0 ? -err : err);
}

// libbpf's warnings (netlink extended acks, the verifier log) are kept here
// instead of going straight to stderr: some failures are expected (clsact
// already there, nothing to detach) and their noise would hide real errors.
// An error message carries whatever libbpf said while it failed.
std::string libbpf_log;

int capture_libbpf_print(enum libbpf_print_level level, const char* format, va_list args)
{
    if (level == LIBBPF_DEBUG) {
        return 0;
    }
    char line[4096];
    const int n = std::vsnprintf(line, sizeof(line), format, args);
    libbpf_log += line;
    return n;
}

// `what` failed with `err`: the message plus what libbpf logged meanwhile.
std::string libbpf_failure(const std::string& what, int err)
{
    std::string message = what + ": " + errno_text(err);
    if (!libbpf_log.empty()) {
        message += "\n" + libbpf_log;
    }
    libbpf_log.clear();
    return message;
}

// Owns a file descriptor from bpf_*_get_fd_by_id.
class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd()
    {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }

private:
    int fd_;
};

// Owns a bpf_object. Closing it after attach is fine: the tc filter holds
// the program, and the program holds its maps.
class BpfObject {
public:
    explicit BpfObject(bpf_object* obj) : obj_(obj) {}
    BpfObject(const BpfObject&) = delete;
    BpfObject& operator=(const BpfObject&) = delete;
    ~BpfObject() { bpf_object__close(obj_); }
    bpf_object* get() const { return obj_; }

private:
    bpf_object* obj_;
};

struct Options {
    std::string command;
    std::string device;
    std::vector<std::string> locals;
    std::vector<std::string> vips;
    uint16_t gue_port = SLUICE_GUE_DEFAULT_PORT;
    std::string obj_path;
    bool json = false;
};

std::optional<sluice_decap_addr_key> parse_address(const std::string& text)
{
    sluice_decap_addr_key key{};
    if (inet_pton(AF_INET, text.c_str(), &key.addr.v4) == 1) {
        key.family = SLUICE_FAMILY_IPV4;
        return key;
    }
    if (inet_pton(AF_INET6, text.c_str(), key.addr.bytes) == 1) {
        key.family = SLUICE_FAMILY_IPV6;
        return key;
    }
    return std::nullopt;
}

Status parse_options(int argc, char** argv, Options& options)
{
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty()) {
        return Status::error("missing command");
    }
    options.command = args[0];
    if (options.command != "attach" && options.command != "detach" && options.command != "stats") {
        return Status::error("unknown command '" + options.command + "'");
    }
    if (args.size() < 2 || args[1].starts_with("-")) {
        return Status::error(options.command + ": missing DEV");
    }
    options.device = args[1];

    for (size_t i = 2; i < args.size(); ++i) {
        const std::string& flag = args[i];
        const bool attach_only = flag == "--local" || flag == "--vip" || flag == "--gue-port" || flag == "--obj";
        if (flag == "--json" && options.command == "stats") {
            options.json = true;
            continue;
        }
        if (!attach_only || options.command != "attach") {
            return Status::error(options.command + ": unexpected argument '" + flag + "'");
        }
        if (i + 1 >= args.size()) {
            return Status::error(flag + " needs a value");
        }
        const std::string& value = args[++i];
        if (flag == "--local") {
            options.locals.push_back(value);
        } else if (flag == "--vip") {
            options.vips.push_back(value);
        } else if (flag == "--obj") {
            options.obj_path = value;
        } else {
            char* end = nullptr;
            errno = 0;
            const unsigned long port = std::strtoul(value.c_str(), &end, 10);
            if (errno != 0 || end == value.c_str() || *end != '\0' || port == 0 || port > 65535) {
                return Status::error("--gue-port: '" + value + "' is not a port number (1-65535)");
            }
            options.gue_port = static_cast<uint16_t>(port);
        }
    }
    if (options.command == "attach" && options.locals.empty()) {
        return Status::error("attach: at least one --local ADDR is required (without it nothing is decapsulated)");
    }
    for (const auto& list : {options.locals, options.vips}) {
        for (const auto& address : list) {
            if (!parse_address(address)) {
                return Status::error("'" + address + "' is not an IPv4 or IPv6 address");
            }
        }
    }
    return Status::ok();
}

// The program assumes a 14-byte Ethernet header in front of the IP header.
Status resolve_ethernet_device(const std::string& name, int& ifindex)
{
    ifindex = static_cast<int>(if_nametoindex(name.c_str()));
    if (ifindex == 0) {
        return Status::error("device '" + name + "': " + errno_text(errno));
    }
    ifreq request{};
    std::snprintf(request.ifr_name, sizeof(request.ifr_name), "%s", name.c_str());
    const int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) {
        return Status::error("socket: " + errno_text(errno));
    }
    const int rc = ::ioctl(sock, SIOCGIFHWADDR, &request);
    const int err = errno;
    ::close(sock);
    if (rc != 0) {
        return Status::error("device '" + name + "': " + errno_text(err));
    }
    if (request.ifr_hwaddr.sa_family != ARPHRD_ETHER) {
        return Status::error("device '" + name + "' is not an Ethernet device (tc_decap expects an Ethernet header)");
    }
    return Status::ok();
}

std::string default_object_path()
{
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) {
        return "tc_decap.bpf.o";
    }
    // ebpf/meson.build builds this tool and the object into one directory.
    return (self.parent_path() / "tc_decap.bpf.o").string();
}

Status fill_address_map(bpf_object* obj, const char* map_name, const std::vector<std::string>& addresses)
{
    bpf_map* map = bpf_object__find_map_by_name(obj, map_name);
    if (map == nullptr) {
        return Status::error(std::string("object has no map '") + map_name + "'");
    }
    if (bpf_map__key_size(map) != sizeof(sluice_decap_addr_key)) {
        return Status::error(std::string("map '") + map_name +
                             "' key size differs from this tool's: object and tool come from different builds");
    }
    if (addresses.size() > bpf_map__max_entries(map)) {
        return Status::error(std::string("too many addresses for map '") + map_name + "' (max " +
                             std::to_string(bpf_map__max_entries(map)) + ")");
    }
    const uint32_t value = 0;
    for (const auto& address : addresses) {
        const sluice_decap_addr_key key = *parse_address(address);
        const int rc = bpf_map_update_elem(bpf_map__fd(map), &key, &value, BPF_ANY);
        if (rc != 0) {
            return Status::error(std::string("update ") + map_name + " with " + address + ": " + errno_text(rc));
        }
    }
    return Status::ok();
}

bpf_tc_hook ingress_hook(int ifindex)
{
    bpf_tc_hook hook{};
    hook.sz = sizeof(hook);
    hook.ifindex = ifindex;
    hook.attach_point = BPF_TC_INGRESS;
    return hook;
}

bpf_tc_opts filter_opts()
{
    bpf_tc_opts opts{};
    opts.sz = sizeof(opts);
    opts.handle = kFilterHandle;
    opts.priority = kFilterPriority;
    return opts;
}

Status attach(const Options& options)
{
    int ifindex = 0;
    if (Status s = resolve_ethernet_device(options.device, ifindex); s.failed()) {
        return s;
    }
    const std::string path = options.obj_path.empty() ? default_object_path() : options.obj_path;
    if (!std::filesystem::exists(path)) {
        return Status::error("BPF object '" + path + "' not found (build it with ninja, or pass --obj)");
    }

    BpfObject obj(bpf_object__open_file(path.c_str(), nullptr));
    if (obj.get() == nullptr) {
        return Status::error(libbpf_failure("open " + path, errno));
    }

    // .rodata holds exactly decap_config; a size mismatch means the object
    // was built from another version of decap_abi.h.
    sluice_decap_config config{};
    config.gue_port = SLUICE_HTONS(options.gue_port);
    config.vip_filter = options.vips.empty() ? 0 : 1;
    bpf_map* rodata = bpf_object__find_map_by_name(obj.get(), ".rodata");
    if (rodata == nullptr || bpf_map__set_initial_value(rodata, &config, sizeof(config)) != 0) {
        return Status::error(path +
                             ": .rodata is not one struct sluice_decap_config: not a tc_decap.bpf.o of this build");
    }

    if (int rc = bpf_object__load(obj.get()); rc != 0) {
        return Status::error(libbpf_failure("load " + path, rc));
    }
    if (Status s = fill_address_map(obj.get(), SLUICE_DECAP_MAP_LOCAL, options.locals); s.failed()) {
        return s;
    }
    if (Status s = fill_address_map(obj.get(), SLUICE_DECAP_MAP_VIPS, options.vips); s.failed()) {
        return s;
    }
    bpf_program* prog = bpf_object__find_program_by_name(obj.get(), SLUICE_DECAP_PROG_NAME);
    if (prog == nullptr) {
        return Status::error(path + ": no program " SLUICE_DECAP_PROG_NAME);
    }

    bpf_tc_hook hook = ingress_hook(ifindex);
    if (int rc = bpf_tc_hook_create(&hook); rc != 0 && rc != -EEXIST) {
        return Status::error(libbpf_failure("create clsact on " + options.device, rc));
    }
    libbpf_log.clear();  // "exclusivity flag on": clsact was already there
    bpf_tc_opts opts = filter_opts();
    opts.prog_fd = bpf_program__fd(prog);
    opts.flags = BPF_TC_F_REPLACE;
    if (int rc = bpf_tc_attach(&hook, &opts); rc != 0) {
        return Status::error(libbpf_failure("attach to " + options.device + " ingress", rc));
    }
    std::printf("attached %s (prog id %u) to %s ingress; gue port %u; %zu local address(es); %s\n",
                SLUICE_DECAP_PROG_NAME, opts.prog_id, options.device.c_str(), options.gue_port,
                options.locals.size(),
                options.vips.empty() ? "any inner destination"
                                     : (std::to_string(options.vips.size()) + " VIP(s)").c_str());
    return Status::ok();
}

Status detach(const Options& options)
{
    const int ifindex = static_cast<int>(if_nametoindex(options.device.c_str()));
    if (ifindex == 0) {
        return Status::error("device '" + options.device + "': " + errno_text(errno));
    }
    bpf_tc_hook hook = ingress_hook(ifindex);
    bpf_tc_opts opts = filter_opts();
    const int rc = bpf_tc_detach(&hook, &opts);
    // No clsact qdisc (EINVAL) or no filter of ours (ENOENT): already detached.
    if (rc == -ENOENT || rc == -EINVAL) {
        std::printf("%s: not attached to %s\n", SLUICE_DECAP_PROG_NAME, options.device.c_str());
        return Status::ok();
    }
    if (rc != 0) {
        return Status::error(libbpf_failure("detach from " + options.device, rc));
    }
    // The clsact qdisc stays: other programs may hang off it.
    std::printf("detached %s from %s ingress\n", SLUICE_DECAP_PROG_NAME, options.device.c_str());
    return Status::ok();
}

// Finds the stats map of the program our filter runs, via its map ids.
Status open_stats_map(const std::string& device, std::optional<Fd>& map_fd)
{
    const int ifindex = static_cast<int>(if_nametoindex(device.c_str()));
    if (ifindex == 0) {
        return Status::error("device '" + device + "': " + errno_text(errno));
    }
    bpf_tc_hook hook = ingress_hook(ifindex);
    bpf_tc_opts opts = filter_opts();
    if (int rc = bpf_tc_query(&hook, &opts); rc != 0) {
        return Status::error(std::string(SLUICE_DECAP_PROG_NAME) + " is not attached to " + device + " (" +
                             errno_text(rc) + ")");
    }
    Fd prog_fd(bpf_prog_get_fd_by_id(opts.prog_id));
    if (prog_fd.get() < 0) {
        return Status::error("open prog id " + std::to_string(opts.prog_id) + ": " + errno_text(errno));
    }
    std::vector<uint32_t> map_ids(16);
    bpf_prog_info prog_info{};
    prog_info.nr_map_ids = static_cast<uint32_t>(map_ids.size());
    prog_info.map_ids = reinterpret_cast<uintptr_t>(map_ids.data());
    uint32_t info_len = sizeof(prog_info);
    if (int rc = bpf_obj_get_info_by_fd(prog_fd.get(), &prog_info, &info_len); rc != 0) {
        return Status::error("prog info: " + errno_text(rc));
    }
    if (std::string(prog_info.name) != SLUICE_DECAP_PROG_NAME) {
        return Status::error("the filter on " + device + " runs '" + prog_info.name + "', not " + SLUICE_DECAP_PROG_NAME);
    }
    const uint32_t count = std::min<uint32_t>(prog_info.nr_map_ids, static_cast<uint32_t>(map_ids.size()));
    for (uint32_t i = 0; i < count; ++i) {
        Fd fd(bpf_map_get_fd_by_id(map_ids[i]));
        if (fd.get() < 0) {
            continue;
        }
        bpf_map_info map_info{};
        uint32_t map_info_len = sizeof(map_info);
        if (bpf_obj_get_info_by_fd(fd.get(), &map_info, &map_info_len) != 0 ||
            std::string(map_info.name) != SLUICE_DECAP_MAP_STATS) {
            continue;
        }
        if (map_info.value_size != sizeof(sluice_counter) || map_info.max_entries != SLUICE_DECAP_OUTCOME_MAX) {
            return Status::error(
                "stats map layout differs from this tool's: attached object and tool come from different builds");
        }
        map_fd.emplace(fd.release());
        return Status::ok();
    }
    return Status::error("attached program has no map " SLUICE_DECAP_MAP_STATS);
}

Status stats(const Options& options)
{
    std::optional<Fd> map_fd;
    if (Status s = open_stats_map(options.device, map_fd); s.failed()) {
        return s;
    }
    const int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) {
        return Status::error("possible CPUs: " + errno_text(cpus));
    }
    static constexpr const char* kLabels[] = {
#define SLUICE_DECAP_LABEL_(name, label, text) label,
        SLUICE_DECAP_OUTCOMES(SLUICE_DECAP_LABEL_)
#undef SLUICE_DECAP_LABEL_
    };
    std::vector<sluice_counter> per_cpu(static_cast<size_t>(cpus));
    if (options.json) {
        std::printf("{");
    }
    for (uint32_t outcome = 0; outcome < SLUICE_DECAP_OUTCOME_MAX; ++outcome) {
        if (int rc = bpf_map_lookup_elem(map_fd->get(), &outcome, per_cpu.data()); rc != 0) {
            return Status::error("read " SLUICE_DECAP_MAP_STATS ": " + errno_text(rc));
        }
        sluice_counter total{};
        for (const auto& c : per_cpu) {
            total.packets += c.packets;
            total.bytes += c.bytes;
        }
        const auto packets = static_cast<unsigned long long>(total.packets);
        const auto bytes = static_cast<unsigned long long>(total.bytes);
        if (options.json) {
            std::printf("%s\"%s\":{\"packets\":%llu,\"bytes\":%llu}", outcome == 0 ? "" : ",",
                        kLabels[outcome], packets, bytes);
        } else {
            std::printf("%-20s %12llu packets %14llu bytes\n", kLabels[outcome], packets, bytes);
        }
    }
    if (options.json) {
        std::printf("}\n");
    }
    return Status::ok();
}

}  // namespace

int main(int argc, char** argv)
{
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
            std::fputs(kUsage, stdout);
            return 0;
        }
    }
    Options options;
    if (Status s = parse_options(argc, argv, options); s.failed()) {
        std::fprintf(stderr, "sluice-decap: %s (see sluice-decap --help)\n", s.message().c_str());
        return kExitUsage;
    }
    libbpf_set_print(capture_libbpf_print);
    Status result = options.command == "attach"   ? attach(options)
                    : options.command == "detach" ? detach(options)
                                                  : stats(options);
    if (result.failed()) {
        std::fprintf(stderr, "sluice-decap %s: %s\n", options.command.c_str(), result.message().c_str());
        return kExitFailure;
    }
    return 0;
}
