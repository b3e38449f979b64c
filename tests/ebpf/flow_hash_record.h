/* One record of the flow-hash parity test's packets, shared by
 * flow_hash_prog.bpf.c and flow_hash_parity_test.cpp: a key as the C++ side
 * lays it out, followed by what the BPF program computed from it. */
#ifndef SLUICE_TEST_FLOW_HASH_RECORD_H
#define SLUICE_TEST_FLOW_HASH_RECORD_H

#include "abi/flow.h"

/* Records per packet: 64 x 48 bytes fits the 3.5 KB that BPF_PROG_TEST_RUN
 * accepts for a single-buffer XDP frame. */
#define FLOW_HASH_BATCH 64

struct flow_hash_record {
	struct sluice_flow_key key; /* input, exactly as the C++ side built it */
	__u32 hash;                 /* output: sluice_flow_hash(&key) */
	__u16 gue_sport;            /* output: sluice_gue_sport(hash), host order */
	__u16 done;                 /* output: 1 once written, so a skipped record fails */
};

#endif /* SLUICE_TEST_FLOW_HASH_RECORD_H */
