/* Shared by perf/xdp_bench_harness.bpf.c and perf/xdp_bench.cpp (whose
 * skeleton names the type): the harness's per-CPU flow counter, one cache
 * line per CPU so CPUs running the harness at once (xdp_bench two_cpus)
 * share no line of their own. */
#ifndef SLUICE_PERF_XDP_BENCH_LANE_H
#define SLUICE_PERF_XDP_BENCH_LANE_H

#include <linux/types.h>

#define BENCH_LANES 64

struct bench_lane {
	__u32 next_flow; /* iteration counter, kept across runs */
	__u32 flow_base; /* flow numbers of this CPU start after it */
	__u32 pad[14];
};

#endif /* SLUICE_PERF_XDP_BENCH_LANE_H */
