/* Test-only XDP program: hashes every flow key in the packet with the ABI's
 * sluice_flow_hash and sluice_gue_sport, compiled for BPF from abi/flow.h
 * unchanged, and writes the results into the packet so
 * BPF_PROG_TEST_RUN's data_out carries them back to
 * flow_hash_parity_test.cpp. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi/flow.h"
#include "flow_hash_record.h"

SEC("xdp")
int flow_hash_batch(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	for (int i = 0; i < FLOW_HASH_BATCH; i++) {
		struct flow_hash_record *rec = (struct flow_hash_record *)data + i;

		/* Trailing bytes shorter than a record are padding. */
		if ((void *)(rec + 1) > data_end)
			break;
		rec->hash = sluice_flow_hash(&rec->key);
		rec->gue_sport = sluice_gue_sport(rec->hash);
		rec->done = 1;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Apache-2.0";
