/* Compiles the ABI headers as strict C11 so a C++-only construct in them
 * breaks the build instead of the BPF programs. */
#include "abi/sluice_abi.h"

__u32 sluice_abi_c11_check(const struct sluice_flow_key *key);

__u32 sluice_abi_c11_check(const struct sluice_flow_key *key)
{
	return sluice_flow_hash(key) ^ (__u32)sizeof(struct sluice_stats);
}
