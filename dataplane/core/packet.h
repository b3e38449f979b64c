// The core's view of one packet and of what to do with it: no DPDK types,
// so the pipeline runs on plain buffers in tests and on rte_mbuf data in the
// runtime (which maps data/len/headroom to data_off/pkt_len after the call).
#pragma once

#include <cstdint>

extern "C" {
#include "abi/drop_reason.h"
}

#if defined(__GNUC__)
#define SLUICE_ALWAYS_INLINE inline __attribute__((always_inline))
#define SLUICE_LIKELY(x) __builtin_expect(!!(x), 1)
#define SLUICE_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define SLUICE_ALWAYS_INLINE inline
#define SLUICE_LIKELY(x) (x)
#define SLUICE_UNLIKELY(x) (x)
#endif

namespace sluice::core {

// One single-segment packet. Encapsulation prepends into the headroom by
// moving `data` back (and stripping a VLAN tag or building an ICMP reply may
// move it either way), so the wrapper must copy data/len back into its
// buffer descriptor after process_burst(); `headroom` is kept in step so a
// second pass can never write before the buffer.
struct Packet {
    uint8_t* data;      // first byte of the Ethernet header
    uint32_t len;       // bytes from `data` to the end of the frame
    uint32_t headroom;  // writable bytes before `data`
    uint16_t in_port;   // port the packet was received on
    uint16_t pad;       // zero
};

enum class Action : uint8_t {
    kTx,         // transmit on Verdict::port
    kException,  // hand to the host kernel (TAP); XDP: XDP_PASS
    kDrop,       // free; Verdict::reason says why
    kControl,    // ARP or IPv6 NS/NA: to the runtime's control thread (neighbour
                 // answers and learning); XDP: XDP_PASS, the kernel answers
};

// Outcome for one packet. `reason` is the drop counted for the packet: set
// for kDrop, and also for the one kTx that is not a forward, the ICMP
// "fragmentation needed"/"packet too big" built in place of an oversized
// packet (reason SLUICE_DROP_MTU_EXCEEDED: the original is dropped, the
// reply is sent). kNoReason otherwise. process_burst() has already counted
// every verdict; a runtime whose tx burst then fails must move a forwarded
// packet from tx to TX_FULL (and an exception from exception to
// EXCEPTION_FULL, a control packet from control to CONTROL_FULL) to keep
// "one counter per packet", and just free an ICMP reply, which is counted as
// a drop already.
struct Verdict {
    static constexpr uint8_t kNoReason = SLUICE_DROP_MAX;

    Action action;
    uint8_t reason;
    uint16_t port;

    static constexpr Verdict tx(uint16_t p) { return {Action::kTx, kNoReason, p}; }
    static constexpr Verdict exception() { return {Action::kException, kNoReason, 0}; }
    static constexpr Verdict control() { return {Action::kControl, kNoReason, 0}; }
    static constexpr Verdict drop(sluice_drop_reason r) { return {Action::kDrop, static_cast<uint8_t>(r), 0}; }
    static constexpr Verdict icmp_reply(uint16_t p, sluice_drop_reason r)
    {
        return {Action::kTx, static_cast<uint8_t>(r), p};
    }
    // True when the packet was counted as forwarded (tx_packets).
    constexpr bool counted_as_tx() const { return action == Action::kTx && reason == kNoReason; }
};

}  // namespace sluice::core
