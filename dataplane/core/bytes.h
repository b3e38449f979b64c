// Unaligned loads and stores of wire structs. Headers after a 14- or 18-byte
// L2 header sit 2-byte aligned while the ABI structs have 4-byte alignment,
// so dereferencing a cast pointer would be undefined behaviour in C++ (and
// lets the compiler emit aligned vector moves); memcpy of a constant size
// compiles to the same plain loads and stores on x86-64 and arm64.
#pragma once

#include <cstdint>
#include <cstring>

#include "core/packet.h"

namespace sluice::core {

template <typename T>
SLUICE_ALWAYS_INLINE T load(const uint8_t* p)
{
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}

template <typename T>
SLUICE_ALWAYS_INLINE void store(uint8_t* p, const T& v)
{
    std::memcpy(p, &v, sizeof(T));
}

SLUICE_ALWAYS_INLINE uint16_t ntoh16(uint16_t v) { return __builtin_bswap16(v); }
SLUICE_ALWAYS_INLINE uint16_t hton16(uint16_t v) { return __builtin_bswap16(v); }
SLUICE_ALWAYS_INLINE uint32_t ntoh32(uint32_t v) { return __builtin_bswap32(v); }
SLUICE_ALWAYS_INLINE uint32_t hton32(uint32_t v) { return __builtin_bswap32(v); }

}  // namespace sluice::core
