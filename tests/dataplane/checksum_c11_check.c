/* Compiles abi/checksum.h as strict C11 (and, via meson, as BPF C), so a
 * C++-only construct in it breaks the build rather than the XDP program. */
#include "abi/checksum.h"

__u16 sluice_checksum_c11_check(const struct sluice_ipv4_hdr *h);

__u16 sluice_checksum_c11_check(const struct sluice_ipv4_hdr *h)
{
	return (__u16)sluice_ipv4_hdr_csum(h, sizeof(*h)) ^ sluice_csum_replace16(0, 1, 2);
}
