#!/usr/bin/env bash
# Smoke test of scripts/demo, the README's first command: `--quick` on the
# binaries meson built runs through every step, exits 0, prints the spread
# table before and after the etcd drain/removal, the long-lived connections
# to the drained b3 and the removed b4 all survive, and leaves no namespace,
# process or hugepage of its run behind; then the same with --xdp (the XDP
# data plane), which also leaves no bpffs mount behind. Also: --help works.
# Exit status: 0 pass, 1 fail, 77 skip (no root or one CPU, only when CI is
# not "true").
set -euo pipefail

root=${SLUICE_SOURCE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
build=${SLUICE_BUILD_DIR:-${SLUICE_BUILD_ROOT:-}}

fail() { echo "FAIL: $*" >&2; exit 1; }
require() {
  [[ $1 == 0 ]] && return 0
  [[ ${CI:-} == true ]] && fail "required in CI but missing: $2"
  echo "SKIP: missing $2 (would fail with CI=true)"
  exit 77
}
require "$(id -u)" "root (network namespaces)"
(($(nproc) >= 2)) || require 1 "two CPUs"
[[ -n $build && -x $build/controlplane/sluiced && -x $build/controlplane/sluicectl/sluicectl ]] ||
  fail "sluiced/sluicectl missing in the build directory '$build'"

"$root/scripts/demo" --help | grep -q -- "--quick" || fail "--help does not describe --quick"

out=$(mktemp)
trap 'rm -f "$out"' EXIT

# One run of the demo with "$@" added, and every check of its output and
# of what it leaves behind.
check_demo() {
huge_before=$(grep -E '^HugePages_(Total|Rsvd):' /proc/meminfo)
SLUICE_BUILD_DIR=$build "$root/scripts/demo" --quick --no-build "$@" >"$out" 2>&1 &
pid=$!  # scripts/demo execs the python half: this PID names the run's namespaces
rc=0
wait "$pid" || rc=$?
cat "$out"
[[ $rc == 0 ]] || fail "scripts/demo --quick $* exited $rc"

# The spread table, twice (before and after the change), one row per backend.
[[ $(grep -c '^ *backend  address  *requests  share$' "$out") == 2 ]] || fail "no spread table (twice)"
for b in b1 b2 b3 b4; do
  [[ $(grep -cE "^ *$b +192\.0\.2\.2[1-4] +[0-9]+ +[0-9.]+%" "$out") == 2 ]] || fail "spread table lacks $b"
done
grep -qE '^ *b3 +192\.0\.2\.23 +0 +0\.0% +\(draining\)$' "$out" || fail "new requests reached the draining b3"
grep -qE '^ *b4 +192\.0\.2\.24 +0 +0\.0% +\(removed\)$' "$out" || fail "new requests reached the removed b4"
grep -q 'long-lived on the draining b3: \([0-9]*\)/\1 survived' "$out" || fail "long-lived connections to b3 broke"
grep -q 'long-lived on the removed b4: \([1-9][0-9]*\)/\1 survived$' "$out" || fail "long-lived connections to the removed b4 broke"
grep -q 'PER SECOND' "$out" || fail "no live sluicectl stats view"
grep -q 'curl -s http://127.0.0.1:9180/metrics' "$out" || fail "no metrics URL"
grep -qE '^connection table: (per-worker|shared|per-cpu), [0-9]+ x [0-9]+ entries, live ~[1-9]' <(sed 's/^ *//' "$out") ||
  fail "sluicectl stats does not say how full the connection table is"
grep -qE '^ *web +192\.0\.2\.23:80 +draining \(discovery\) +[1-9]' "$out" ||
  fail "sluicectl connections shows no live connection on the draining b3"
grep -qE 'sluice_worker_rx_packets_total\{worker="[0-9]+",cpu="[0-9]+"\} [1-9]' "$out" ||
  fail "the metrics printed show no worker's packets"
grep -q '^\[13/13\] tearing down .* ok' "$out" || fail "no clean teardown line"

# Nothing of the run left, checked here independently of the demo's own check.
left=$(ip netns list | grep -E "^sluice-demo-[a-z0-9]+-$pid( |$)" || true)
[[ -z $left ]] || fail "namespaces left: $left"
for p in /proc/[0-9]*; do
  if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -q "sluice-demo-$pid-"; then
    fail "process left: ${p#/proc/} $(tr '\0' ' ' <"$p/cmdline")"
  fi
done
[[ $(grep -E '^HugePages_(Total|Rsvd):' /proc/meminfo) == "$huge_before" ]] || fail "hugepage counts changed"
ls -d /tmp/sluice-demo-"$pid"-* >/dev/null 2>&1 && fail "work directory left in /tmp"
grep -q " /tmp/sluice-demo-$pid-" /proc/mounts && fail "bpffs left mounted"
return 0
}

check_demo
grep -q 'starting sluiced (DPDK' "$out" || fail "the default demo did not run the DPDK data plane"
check_demo --xdp
grep -q 'starting sluiced (XDP' "$out" || fail "--xdp did not run the XDP data plane"
grep -qE ', xdp, [0-9]+ workers' "$out" || fail "--xdp: sluicectl stats does not say xdp"
echo "demo smoke: ok (DPDK and XDP)"
