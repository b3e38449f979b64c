// Runtime start-up, the worker lcores' entry point, stats and shutdown.
#include "dataplane/dpdk/runtime.h"

#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <thread>

#include "dataplane/dpdk/sluice_pipeline.h"
#include "dataplane/dpdk/worker_loop.h"

namespace sluice::dpdk {

// What one worker lcore owns. Heap-allocated and cache aligned (WorkerLoop
// is), so no two workers share a line.
struct Runtime::WorkerSlot {
    Runtime* runtime = nullptr;
    uint32_t index = 0;                   // RCU thread id and TX queue
    unsigned lcore = 0;
    WorkerLoop loop;
    std::unique_ptr<core::Worker> worker;  // made on the lcore itself (NUMA-local)
    std::atomic<int> state{0};            // 0 starting, 1 polling, -1 failed
};

namespace {

constexpr auto kWorkerStartTimeout = std::chrono::seconds(30);
constexpr uint16_t kMbufCache = 256;

uint64_t ms_to_tsc(std::chrono::milliseconds ms)
{
    return static_cast<uint64_t>(ms.count()) * (rte_get_tsc_hz() / 1000);
}

// The MTU of the kernel interface an af_packet devargs string names
// ("net_af_packet0,iface=eth1,qpairs=2"), in the current network namespace.
Result<uint16_t> kernel_mtu(const std::string& devargs)
{
    std::string iface;
    size_t pos = 0;
    while (pos <= devargs.size()) {
        const size_t comma = std::min(devargs.find(',', pos), devargs.size());
        const std::string kv = devargs.substr(pos, comma - pos);
        if (kv.rfind("iface=", 0) == 0) iface = kv.substr(6);
        pos = comma + 1;
    }
    if (iface.empty() || iface.size() >= IFNAMSIZ) return make_error("no usable iface= in '" + devargs + "'");
    const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return make_error(std::string("socket: ") + std::strerror(errno));
    ifreq req{};
    std::memcpy(req.ifr_name, iface.c_str(), iface.size());
    const int rc = ioctl(fd, SIOCGIFMTU, &req);
    const int err = errno;
    close(fd);
    if (rc != 0) return make_error("interface " + iface + ": " + std::strerror(err));
    if (req.ifr_mtu <= 0 || req.ifr_mtu > 0xFFFF) return make_error("interface " + iface + ": odd MTU");
    return static_cast<uint16_t>(req.ifr_mtu);
}

// What start_port() needs to know before it runs: the device's own MTU
// (for af_packet: the kernel interface's, so sluice never changes a link it
// was not told to change), after checking the queue counts the runtime will
// ask for. Probes the device; start_port() then finds it already probed.
struct DeviceFacts {
    uint16_t mtu = RTE_ETHER_MTU;  // L3 MTU to use
    bool kernel_mtu = false;       // mtu is the kernel interface's, whatever the ethdev reports
};

Result<DeviceFacts> probe_device(const RuntimePort& p, uint16_t rx_queues, uint16_t tx_queues)
{
    const auto comma = p.device.find(',');
    const std::string name = comma == std::string::npos ? p.device : p.device.substr(0, comma);
    uint16_t port_id = 0;
    if (rte_eth_dev_get_port_by_name(name.c_str(), &port_id) != 0) {
        const int rc = rte_dev_probe(p.device.c_str());
        if (rc != 0 || rte_eth_dev_get_port_by_name(name.c_str(), &port_id) != 0) {
            return make_error("port " + p.name + ": cannot probe '" + p.device + "': " +
                              rte_strerror(rc < 0 ? -rc : rc));
        }
    }
    rte_eth_dev_info info{};
    if (rte_eth_dev_info_get(port_id, &info) != 0) return make_error("port " + p.name + ": no device info");
    const std::string driver = info.driver_name != nullptr ? info.driver_name : "";
    // af_packet opens all its qpairs sockets at probe time in one fanout
    // group: a socket whose queue nobody polls swallows its share of flows.
    const bool fanout = driver == "net_af_packet";
    if (tx_queues > info.max_tx_queues || (fanout && rx_queues != info.max_rx_queues)) {
        std::string msg = "port " + p.name + ": sluice needs " + std::to_string(tx_queues) +
                          " TX queues (one per worker and one for the control thread's ARP/ND) and " +
                          std::to_string(rx_queues) + " RX queues; " + driver + " device '" + p.device +
                          "' has " + std::to_string(info.max_tx_queues) + " TX / " +
                          std::to_string(info.max_rx_queues) + " RX";
        if (fanout) {
            msg += "; for net_af_packet set qpairs=" + std::to_string(tx_queues) +
                   " in the devargs and rx_queues = " + std::to_string(tx_queues) +
                   " on the port, so every fanout socket is polled";
        }
        return make_error(msg);
    }
    DeviceFacts facts;
    if (fanout) {
        // af_packet reports DPDK's default and refuses anything above 1500,
        // yet carries whatever the kernel interface does (up to its frame
        // size): the interface's MTU is the truth.
        const auto kernel = kernel_mtu(p.device);
        if (!kernel) return make_error("port " + p.name + ": " + kernel.error());
        facts.mtu = *kernel;
        facts.kernel_mtu = true;
        return facts;
    }
    uint16_t mtu = 0;
    if (rte_eth_dev_get_mtu(port_id, &mtu) == 0 && mtu != 0) facts.mtu = mtu;
    return facts;
}

}  // namespace

Result<std::unique_ptr<Runtime>> Runtime::create(const RuntimeConfig& config)
{
    if (config.worker_lcores.empty()) return make_error("no worker lcores");
    if (config.worker_lcores.size() > RTE_MAX_LCORE) return make_error("too many worker lcores");
    if (config.ports.empty()) return make_error("no ports");
    std::unique_ptr<Runtime> rt(new Runtime());
    rt->config_ = config;
    rt->worker_lcores_ = config.worker_lcores;

    auto eal = Eal::init(config.eal_args);
    if (!eal) return Error{eal.error()};
    rt->eal_ = std::move(*eal);
    for (unsigned lcore : config.worker_lcores) {
        if (!rte_lcore_is_enabled(lcore) || lcore == rte_get_main_lcore()) {
            return make_error("worker lcore " + std::to_string(lcore) + " is not an EAL worker lcore");
        }
    }

    const auto workers = static_cast<uint16_t>(config.worker_lcores.size());
    // A pool twice the rings' worth would be the usual sizing; the operator
    // chose the size, so only refuse one that cannot even fill the rings.
    rt->pool_ = rte_pktmbuf_pool_create("sluice_mbufs", config.mbuf_pool_size, kMbufCache, 0,
                                        RTE_MBUF_DEFAULT_BUF_SIZE, static_cast<int>(rte_socket_id()));
    if (rt->pool_ == nullptr) {
        return make_error("cannot create a pool of " + std::to_string(config.mbuf_pool_size) +
                          " mbufs: " + rte_strerror(rte_errno) + " (more memory: EAL -m, or hugepages)");
    }
    for (const RuntimePort& p : config.ports) {
        PortConfig pc;
        pc.name = p.name;
        pc.device = p.device;
        pc.rx_queues = p.rx_queues != 0 ? p.rx_queues : workers;
        pc.tx_queues = static_cast<uint16_t>(workers + 1);
        auto facts = probe_device(p, pc.rx_queues, pc.tx_queues);
        if (!facts) return Error{facts.error()};
        pc.rx_descriptors = 512;
        pc.tx_descriptors = 512;
        // The device's own MTU: start_port() then changes nothing.
        pc.mtu = facts->mtu;
        // VIP traffic is addressed to our MAC (we answer ARP for the VIPs),
        // but a bridge may flood unknown unicast and the kernel shares
        // af_packet ports: promiscuous keeps us from depending on either.
        pc.promiscuous = true;
        auto port = start_port(pc, rt->pool_);
        if (!port) return Error{port.error()};
        if (facts->kernel_mtu) port->mtu = facts->mtu;
        // Neighbour solicitations go to solicited-node multicast groups
        // that a NIC filters out unless told otherwise.
        rte_eth_allmulticast_enable(port->port_id);
        rt->ports_.push_back(std::move(*port));
    }

    if (config.exception_path) {
        ExceptionConfig ec;
        ec.workers = workers;
        ec.nic_control_tx_queue = workers;
        for (size_t i = 0; i < rt->ports_.size(); ++i) {
            const Port& p = rt->ports_[i];
            ExceptionPortConfig tap;
            tap.nic_port = p.port_id;
            tap.iface = i == 0 ? config.exception_tap : config.exception_tap + "-" + std::to_string(i);
            std::memcpy(tap.mac.data(), p.mac.addr_bytes, 6);
            // net_tap refuses MTUs above 1500 (its max frame is 1522): the
            // host's management traffic does not need jumbo frames, so the
            // TAP stays at 1500 even on a link that carries more.
            tap.mtu = std::min<uint16_t>(p.mtu, RTE_ETHER_MTU);
            ec.ports.push_back(tap);
        }
        auto exception = ExceptionPath::create(ec, rt->pool_);
        if (!exception) return Error{exception.error()};
        rt->exception_ = std::move(*exception);
    }
    NeighborConfig nc;
    nc.workers = workers;
    for (const Port& p : rt->ports_) {
        NeighborPort np;
        np.port_id = p.port_id;
        std::memcpy(np.mac.data(), p.mac.addr_bytes, 6);
        np.control_tx_queue = workers;
        if (rt->exception_) {
            np.kernel_port = rt->exception_->tap_port(p.port_id);
            np.kernel_tx_queue = rt->exception_->control_queue();
        }
        nc.ports.push_back(np);
    }
    auto neighbors = NeighborManager::create(std::move(nc), rt->pool_);
    if (!neighbors) return Error{"neighbour manager: " + neighbors.error()};
    rt->neighbors_ = std::move(*neighbors);

    rt->conn_config_.capacity = config.conn_table_size;
    rt->conn_config_.tcp_established_timeout = ms_to_tsc(config.tcp_established);
    rt->conn_config_.tcp_transitory_timeout = ms_to_tsc(config.tcp_transitory);
    rt->conn_config_.udp_timeout = ms_to_tsc(config.udp);
    return rt;
}

int Runtime::worker_main(void* arg)
{
    auto* slot = static_cast<WorkerSlot*>(arg);
    Runtime& rt = *slot->runtime;
    std::unique_ptr<FilteredSluicePipeline> pipeline;
    try {
        // The pipeline's clock is the TSC: the ICMP-error bucket converts.
        slot->worker = std::make_unique<core::Worker>(rt.conn_config_, rte_get_tsc_hz());
        // Its token buckets: this worker's, allocated here, once.
        pipeline = std::make_unique<FilteredSluicePipeline>(*slot->worker, *rt.publisher_, slot->index, rt.workers());
    } catch (const std::bad_alloc&) {
        slot->state.store(-1, std::memory_order_release);
        return -1;
    }
    slot->loop.stats = &slot->worker->stats;
    pipeline->online();
    slot->state.store(1, std::memory_order_release);
    run_worker_loop(slot->loop, *pipeline, rt.stop_);
    pipeline->offline();
    return 0;
}

Result<void> Runtime::start_workers(std::unique_ptr<const Snapshot> initial)
{
    if (launched_) return make_error("workers already started");
    const auto nworkers = static_cast<uint32_t>(worker_lcores_.size());
    if (initial == nullptr || initial->forwarding == nullptr) return make_error("no forwarding state to start with");
    auto publisher = RcuPublisher<Snapshot>::create(nworkers, std::move(initial));
    if (!publisher) return Error{publisher.error()};
    publisher_ = std::move(*publisher);

    for (uint32_t i = 0; i < nworkers; ++i) {
        auto slot = std::make_unique<WorkerSlot>();
        slot->runtime = this;
        slot->index = i;
        slot->lcore = worker_lcores_[i];
        slot->loop.worker_id = i;
        slot->loop.tx_queue = static_cast<uint16_t>(i);
        slot->loop.control_ring = neighbors_->control_ring(static_cast<uint16_t>(i));
        // Worker i owns RX queue i of every port (and i + W, i + 2W... when
        // a port has more queues than there are workers).
        for (const Port& p : ports_) {
            for (uint16_t q = static_cast<uint16_t>(i); q < p.rx_queues; q = static_cast<uint16_t>(q + nworkers)) {
                if (slot->loop.rx_count == kMaxRxQueuesPerWorker) {
                    return make_error("worker " + std::to_string(i) + " would own more than " +
                                      std::to_string(kMaxRxQueuesPerWorker) + " RX queues");
                }
                RxQueueRef& ref = slot->loop.rx[slot->loop.rx_count++];
                ref.port = p.port_id;
                ref.queue = q;
                ref.exception_port = exception_ ? exception_->tap_port(p.port_id) : kDestDrop;
            }
        }
        workers_.push_back(std::move(slot));
    }
    launched_ = true;
    for (auto& slot : workers_) {
        const int rc = rte_eal_remote_launch(&Runtime::worker_main, slot.get(), slot->lcore);
        if (rc != 0) {
            stop();
            return make_error("cannot launch worker on lcore " + std::to_string(slot->lcore) + ": " +
                              rte_strerror(-rc));
        }
    }
    const auto deadline = std::chrono::steady_clock::now() + kWorkerStartTimeout;
    for (auto& slot : workers_) {
        int state = 0;
        while ((state = slot->state.load(std::memory_order_acquire)) == 0 &&
               std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        if (state != 1) {
            stop();
            return make_error("worker on lcore " + std::to_string(slot->lcore) +
                              (state == 0 ? " did not start" : ": cannot allocate its connection table of " +
                                                                   std::to_string(config_.conn_table_size) +
                                                                   " entries"));
        }
    }
    return {};
}

void Runtime::poll_control(uint64_t now_ns)
{
    if (exception_) exception_->poll();
    if (neighbors_) neighbors_->poll(now_ns);
}

void Runtime::publish(std::unique_ptr<const Snapshot> next) { publisher_->publish(std::move(next)); }

uint64_t Runtime::publications() const { return publisher_ ? publisher_->generation() + 1 : 0; }

RuntimeStats Runtime::stats() const
{
    RuntimeStats out;
    out.backends.assign(SLUICE_MAX_BACKENDS, sluice_counter{});
    constexpr size_t kFields = sizeof(sluice_stats) / sizeof(uint64_t);
    static_assert(sizeof(sluice_stats) % sizeof(uint64_t) == 0);
    uint64_t sum[kFields] = {};
    const auto tsc_hz = static_cast<double>(rte_get_tsc_hz());
    for (const auto& slot : workers_) {
        if (slot->state.load(std::memory_order_acquire) != 1) continue;
        const core::Worker& w = *slot->worker;
        // Field by field, as 64-bit loads: the worker writes them as it goes.
        const auto* fields = reinterpret_cast<const volatile uint64_t*>(&w.stats);
        RuntimeStats::Worker& mine = out.workers.emplace_back();
        mine.index = slot->index;
        mine.lcore = slot->lcore;
        auto* own = reinterpret_cast<uint64_t*>(&mine.stats);
        for (size_t f = 0; f < kFields; ++f) {
            own[f] = fields[f];
            sum[f] += own[f];
        }
        const volatile uint64_t& busy_tsc = slot->loop.busy_tsc;  // the worker adds to it
        mine.busy_seconds = static_cast<double>(busy_tsc) / tsc_hz;
        for (size_t b = 0; b < SLUICE_MAX_BACKENDS; ++b) {
            const volatile sluice_counter& c = w.backend_counters[b];
            out.backends[b].packets += c.packets;
            out.backends[b].bytes += c.bytes;
        }
    }
    std::memcpy(&out.totals, sum, sizeof(sum));
    return out;
}

std::optional<uint32_t> Runtime::connection_backend(const sluice_flow_key& key) const
{
    const uint32_t hash = sluice_flow_hash(&key);
    const uint64_t now = rte_rdtsc();  // the workers' clock
    for (const auto& slot : workers_) {
        if (slot->state.load(std::memory_order_acquire) != 1) continue;
        if (auto e = slot->worker->conns.peek_copy(key, hash, now)) return e->backend_id;
    }
    return std::nullopt;
}

std::vector<std::pair<uint32_t, core::ConnCensus>> Runtime::connection_census() const
{
    std::vector<std::pair<uint32_t, core::ConnCensus>> out;
    const uint64_t now = rte_rdtsc();  // the workers' clock
    for (const auto& slot : workers_) {
        if (slot->state.load(std::memory_order_acquire) != 1) continue;
        out.emplace_back(slot->index, slot->worker->conns.census(now));
    }
    return out;
}

std::vector<uint64_t> Runtime::connections_by_backend() const
{
    std::vector<uint64_t> counts(SLUICE_MAX_BACKENDS);
    const uint64_t now = rte_rdtsc();
    for (const auto& slot : workers_) {
        if (slot->state.load(std::memory_order_acquire) != 1) continue;
        slot->worker->conns.count_by_backend(now, counts.data());
    }
    return counts;
}

void Runtime::stop()
{
    stop_.store(true, std::memory_order_relaxed);
    if (launched_) {
        // Each worker leaves its loop at the next iteration and goes offline.
        for (auto& slot : workers_) rte_eal_wait_lcore(slot->lcore);
        launched_ = false;
    }
    if (!ports_stopped_) {
        // Workers are gone: nothing enqueues to the control rings or writes
        // to the TAPs any more.
        neighbors_.reset();
        exception_.reset();
        for (const Port& p : ports_) stop_port(p);
        ports_stopped_ = true;
    }
}

Runtime::~Runtime()
{
    stop();
    // Worker slots keep their counters readable after stop(); free them
    // before the publisher and the pool, and all of it before the EAL goes.
    workers_.clear();
    publisher_.reset();
    if (pool_ != nullptr) rte_mempool_free(pool_);
    eal_.reset();
}

}  // namespace sluice::dpdk
