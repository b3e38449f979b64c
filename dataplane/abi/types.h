/* Fixed-width types and inline marker shared by C11, C++20 and BPF C.
 * linux/types.h is the one header all three can include: glibc's stdint.h
 * drags gnu/stubs-32.h into BPF builds, so the ABI never uses it. */
#ifndef SLUICE_ABI_TYPES_H
#define SLUICE_ABI_TYPES_H

#include <linux/types.h>

#if defined(__BPF__) || defined(__bpf__)
#define SLUICE_ABI_INLINE static __attribute__((always_inline)) inline
#else
#define SLUICE_ABI_INLINE static inline __attribute__((always_inline))
#endif

/* An ABI function that C++ may also evaluate at compile time (sizes in
 * template constants and static_asserts). */
#ifdef __cplusplus
#define SLUICE_ABI_CONSTEXPR static constexpr inline
#else
#define SLUICE_ABI_CONSTEXPR SLUICE_ABI_INLINE
#endif

/* The flow hash reads key fields as they lie in memory (network byte order
 * loaded as host words). BPF runs in host byte order, so both planes agree on
 * any one host; a mixed-endian fleet would not, and sluice targets x86-64 and
 * arm64 little-endian only. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "sluice's ABI assumes a little-endian host (see flow.h)"
#endif

/* Address families as carried in ABI structs (not AF_INET/AF_INET6, whose
 * values differ between libcs; these are ours and stable). */
#define SLUICE_FAMILY_IPV4 4
#define SLUICE_FAMILY_IPV6 6

/* An IPv4 or IPv6 address. IPv4 lives in v4 with the remaining 12 bytes zero,
 * so two keys compare equal with memcmp. */
union sluice_addr {
	__be32 v4;       /* IPv4, network byte order */
	__be32 v6[4];    /* IPv6, network byte order */
	__u8 bytes[16];  /* raw bytes */
};

#endif /* SLUICE_ABI_TYPES_H */
