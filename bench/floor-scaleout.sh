#!/usr/bin/env bash
# The floor for growing n1 into a 3-node cluster: the guide's steps by hand, with ssh and restatectl,
# waiting only for what each step needs. bench/bench.py runs it on a fresh `restate-lab up 3
# --existing n1` and compares restate-fleet apply with it. Prints one "step <name> <seconds>" line
# per step on stdout.
#
# Environment: LAB_DIR (the lab folder: ssh_config), RESTATECTL, CLUSTER, N1 N2 N3 (addresses),
# SNAPSHOTS (the [worker.snapshots] table, as TOML text); PARTITIONS (default 24, Restate's default).
set -euo pipefail
: "${LAB_DIR:?}" "${RESTATECTL:?}" "${CLUSTER:?}" "${N1:?}" "${N2:?}" "${N3:?}" "${SNAPSHOTS:?}"
svc=/usr/local/bin/restate-service
conf=/etc/restate/restate.toml
on() { ssh -F "$LAB_DIR/ssh_config" -o BatchMode=yes "$@"; }
now() { date +%s.%N; }
mark=$(now)
step() { local t; t=$(now); echo "step $1 $(echo "$t - $mark" | bc)"; mark=$t; }

# Polls every 20 ms, for at most 60 s, until the node's /health reports Alive.
wait_alive() {
  for _ in $(seq 3000); do
    curl -s -m 1 "http://$1:5122/health" 2>/dev/null | grep -q '"Alive"' && return 0
    sleep 0.02
  done
  echo "floor: $1 is not Alive after 60 s" >&2
  return 1
}

metadata="[metadata-client]
addresses = [\"http://$N1:5122/\", \"http://$N2:5122/\", \"http://$N3:5122/\"]"

# 1. A snapshot repository on n1, then restart it.
printf '\n%s\n' "$SNAPSHOTS" | on n1 "cat >> $conf"
on n1 "$svc restart"
wait_alive "$N1"
step n1-snapshots-restart

# 2. Snapshot every partition and trim the log. Partitions start a moment after Alive, and
# restatectl exits 0 even when a partition fails: retry until every partition reports a snapshot.
for i in $(seq 300); do
  if out=$("$RESTATECTL" --address "http://$N1:5122" snapshots create --trim-log 2>&1) \
     && ! grep -qi 'error\|fail' <<<"$out"; then
    break
  fi
  [ "$i" -eq 300 ] && { echo "floor: snapshots failed: $out" >&2; exit 1; }
  sleep 0.05
done
step snapshots

# 3. n2 and n3: configured to join, started together.
for n in 2 3; do
  var=N$n
  printf 'cluster-name = "%s"\nnode-name = "n%s"\nauto-provision = false\nadvertised-address = "http://%s:5122/"\nrocksdb-total-memory-size = "512 MiB"\n\n%s\n\n%s\n' \
    "$CLUSTER" "$n" "${!var}" "$metadata" "$SNAPSHOTS" | on "n$n" "cat > $conf && $svc start" &
done
wait
wait_alive "$N2"
wait_alive "$N3"
step new-nodes-start

# 4. n1 learns the full metadata server list, and restarts.
printf '\n%s\n' "$metadata" | on n1 "cat >> $conf"
on n1 "$svc restart"
wait_alive "$N1"
step n1-metadata-restart

# 5. What restate-fleet verifies: three metadata members, and every partition led again (n1's
# partitions restart with it; the cluster serves them only once they have a leader).
for i in $(seq 600); do
  members=$("$RESTATECTL" --address "http://$N1:5122" metadata-server list-servers 2>/dev/null \
            | grep -c Member || true)
  partitions=$("$RESTATECTL" --address "http://$N1:5122" partitions list 2>/dev/null || true)
  led=$(awk '$1 ~ /^[0-9]+$/ && $3 == "Leader" {print $1}' <<<"$partitions" | sort -u | wc -l)
  [ "$members" -ge 3 ] && [ "$led" -ge "${PARTITIONS:-24}" ] && break
  [ "$i" -eq 600 ] && { echo "floor: $members metadata members, $led partitions led after 60 s" >&2; exit 1; }
  sleep 0.1
done
step verify
