/* Backend-side decapsulation for hosts without the ipip/sit/ip6tnl/fou
 * modules: a tc clsact ingress program that strips the IPIP, 6in6, 4in6,
 * 6in4 and GUE encapsulations sluice writes, so the inner packet reaches the
 * socket bound to the VIP on loopback. Loaded by scripts/sluice-decap. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "decap/decap_abi.h"
#include "decap/maps.h"
#include "decap/parse.h"
#include "decap/strip.h"

/* Decapsulated and passed packets continue up the stack; everything else,
 * including an outcome this switch does not know, is dropped (fail closed:
 * a half-stripped or unrecognised tunnel packet never reaches a socket). */
static __always_inline int decap_verdict(enum sluice_decap_outcome outcome)
{
	if (decap_outcome_is_decap(outcome))
		return TC_ACT_OK;
	switch (outcome) {
	case SLUICE_DECAP_PASS_NOT_ENCAP:
	case SLUICE_DECAP_PASS_NOT_LOCAL:
	case SLUICE_DECAP_PASS_NOT_VIP:
	case SLUICE_DECAP_PASS_FRAGMENT:
		return TC_ACT_OK;
	default:
		return TC_ACT_SHOT;
	}
}

SEC("tc")
int sluice_tc_decap(struct __sk_buff *skb)
{
	struct decap_plan plan;
	__u32 bytes = skb->len;  /* as received, before stripping */
	enum sluice_decap_outcome outcome;

	__builtin_memset(&plan, 0, sizeof(plan));
	outcome = decap_classify(skb, &plan);
	if (decap_outcome_is_decap(outcome) && decap_strip(skb, &plan) < 0)
		outcome = SLUICE_DECAP_DROP_DECAP_FAILED;
	decap_count(outcome, bytes);
	return decap_verdict(outcome);
}

/* No GPL-only helper is used; the string only has to name a license. */
char LICENSE[] SEC("license") = "Apache-2.0";
