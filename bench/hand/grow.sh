#!/usr/bin/env bash
# Growing a cluster by hand: the guide's steps with ssh and restatectl, as fast as a person could
# type them, waiting only for what each step needs; it ends when restatectl shows the end state
# restate-fleet verifies. bench/bench.py runs it on a fresh lab beside `restate-fleet apply` on
# another. Prints one "step <name> <seconds>" line per step.
#
# Environment (besides lib.sh's): CLUSTER, SNAPSHOTS (the [worker.snapshots] table as TOML text),
# MEMBERS (hosts in the cluster now: "n1" for a single node), NEW (hosts that join),
# WORKER_ONLY (those of NEW that run only the worker and ingress), REPLICATION (optional: raised
# at the end), UPGRADE (optional: a restate-server binary every member gets first), GENTLE (1:
# a member's partition leaders and log sequencers move away before it restarts, as restate-fleet
# does on a replicated cluster; else plain restarts, as the guide has them).
source "$(dirname "$0")/lib.sh"
: "${CLUSTER:?}" "${SNAPSHOTS:?}" "${MEMBERS:?}" "${NEW:?}"
servers=$MEMBERS
for h in $NEW; do if [[ " ${WORKER_ONLY:-} " != *" $h "* ]]; then servers+=" $h"; fi; done
metadata=$(metadata_table "$servers")

# 0. The new release on every member, one after the other.
if [ -n "${UPGRADE:-}" ]; then
  for h in $MEMBERS; do
    on "$h" "cat > /usr/local/bin/restate-server.new && chmod 755 /usr/local/bin/restate-server.new \
      && mv -f /usr/local/bin/restate-server.new /usr/local/bin/restate-server && $svc restart" <"$UPGRADE"
    wait_alive "$h"
  done
  step upgrade
fi

single=$([ "$(wc -w <<<"$MEMBERS")" -eq 1 ] && echo yes || echo no)
if [ "$single" = yes ]; then
  # 1. A snapshot repository on the single node, then restart it.
  printf '\n%s\n' "$SNAPSHOTS" | on "$MEMBERS" "cat >> $conf"
  on "$MEMBERS" "$svc restart"
  wait_alive "$MEMBERS"
  step snapshots-restart

  # 2. Snapshot every partition and trim the log. Partitions start a moment after Alive, and
  # restatectl exits 0 even when a partition fails: retry until every partition has a snapshot.
  for i in $(seq 300); do
    if out=$(ctl snapshots create --trim-log 2>&1) && ! grep -qi 'error\|fail' <<<"$out"; then
      break
    fi
    [ "$i" -eq 300 ] && { echo "hand: snapshots failed: $out" >&2; exit 1; }
    sleep 0.05
  done
  step snapshots
fi

# 3. The new hosts: configured to join, started together.
for h in $NEW; do
  roles=""
  if [[ " ${WORKER_ONLY:-} " == *" $h "* ]]; then roles='roles = ["worker", "http-ingress"]'; fi
  printf 'cluster-name = "%s"\nnode-name = "%s"\nauto-provision = false\nadvertised-address = "http://%s:5122/"\nrocksdb-total-memory-size = "512 MiB"\n%s\n\n%s\n\n%s\n' \
    "$CLUSTER" "$h" "${addr[$h]}" "$roles" "$metadata" "$SNAPSHOTS" | on "$h" "cat > $conf && $svc start" &
done
wait
for h in $NEW; do wait_alive "$h"; done
step new-nodes-start

# 4. The members learn the full metadata server list and restart, one after the other (a
# replicated cluster's members hand their partitions over first, as restate-fleet does).
for h in $MEMBERS; do
  gentle=$([ "$single" = no ] && [ "${GENTLE:-0}" = 1 ] && echo yes || echo no)
  via=$(for o in $MEMBERS; do if [ "$o" != "$h" ]; then echo "$o"; break; fi; done)
  if [ "$gentle" = yes ]; then CTL_VIA=$via drain "$h"; fi
  if on "$h" "grep -q '^\[metadata-client\]' $conf"; then
    list=$(grep '^addresses' <<<"$metadata")
    on "$h" "sed -i '/^\[metadata-client\]/,/^\[/ s|^addresses = .*|$list|' $conf && $svc restart"
  else
    printf '\n%s\n' "$metadata" | on "$h" "cat >> $conf && $svc restart"
  fi
  wait_alive "$h"
  if [ "$gentle" = yes ]; then CTL_VIA=$via activate "$h"; fi
done
step members-metadata-restart

# 5. Replication raised once there are nodes to hold it.
if [ -n "${REPLICATION:-}" ]; then
  ctl config set --log-replication "$REPLICATION" --partition-replication "$REPLICATION" >/dev/null
  step replication
fi

# 6. The end state: every metadata server a member, every node alive, every partition led.
wait_end_state "$(wc -w <<<"$servers")" "$MEMBERS $NEW"
step verify
