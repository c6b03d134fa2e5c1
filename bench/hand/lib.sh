# What every hand run shares: ssh to a lab host, restatectl against the cluster, the waits a person
# would do by watching /health and restatectl, and "step <name> <seconds>" lines on stdout.
#
# Environment: LAB_DIR (the lab folder: ssh_config), RESTATECTL, HOSTS ("n1=ADDRESS n2=ADDRESS ...",
# every host of the lab).
set -euo pipefail
: "${LAB_DIR:?}" "${RESTATECTL:?}" "${HOSTS:?}"
svc=/usr/local/bin/restate-service
conf=/etc/restate/restate.toml
declare -A addr
for pair in $HOSTS; do addr[${pair%%=*}]=${pair#*=}; done

on() { ssh -F "$LAB_DIR/ssh_config" -o BatchMode=yes "$@"; }
now() { date +%s.%N; }
mark=$(now)
step() { local t; t=$(now); echo "step $1 $(echo "$t - $mark" | bc)"; mark=$t; }
# restatectl through a node that is up: the first of "$CTL_VIA" (default n1) that answers.
ctl() { "$RESTATECTL" --address "http://${addr[${CTL_VIA:-n1}]}:5122" --yes "$@"; }

# Polls every 20 ms, for at most 60 s, until the node's /health reports Alive.
wait_alive() {
  for _ in $(seq 3000); do
    curl -s -m 1 "http://${addr[$1]}:5122/health" 2>/dev/null | grep -q '"Alive"' && return 0
    sleep 0.02
  done
  echo "hand: $1 is not Alive after 60 s" >&2
  return 1
}

# The node id (N2) restatectl shows for a host name.
node_id() { ctl nodes list | awk -v n="$1" '$3 == n {print $1}'; }

# The metadata-client table naming every metadata server in $1 ("n1 n2 n3").
metadata_table() {
  local list="" h
  for h in $1; do list+="\"http://${addr[$h]}:5122/\", "; done
  printf '[metadata-client]\naddresses = [%s]\n' "${list%, }"
}

# Before a member restarts: its partition leaders move away (worker draining, then a wait until
# it leads nothing), and the sequencers of the logs it runs move to those partitions' new leaders.
drain() {
  local id; id=$(node_id "$1")
  ctl nodes set-worker-state --nodes "$id" --worker-state draining >/dev/null
  for i in $(seq 600); do
    ctl partitions list | awk -v id="$id" '$2 ~ "^"id":" && $3 == "Leader" {found=1} END {exit !found}' || break
    [ "$i" -eq 600 ] && { echo "hand: $1 still leads partitions after 60 s" >&2; return 1; }
    sleep 0.1
  done
  local leaders; leaders=$(ctl partitions list | awk '$3 == "Leader" {split($2, n, ":"); print $1, n[1]}')
  # The first N<id>:<generation> of a row is its sequencer (REPLICATION has spaces in it).
  ctl logs list | awk -v id="$id" '$1 ~ /^[0-9]+$/ {
      for (i = 2; i <= NF; i++) if ($i ~ /^N[0-9]+:[0-9]+$/) { if ($i ~ "^"id":") print $1; break } }' |
    while read -r log; do
    local to; to=$(awk -v l="$log" -v id="$id" '$1 == l && $2 != id {print $2; exit}' <<<"$leaders")
    if [ -n "$to" ]; then echo "$log $to"; fi
  done | xargs -r -n 2 -P 6 sh -c '"$0" --address "$1" --yes logs reconfigure --log-id "$2" --sequencer "$3" >/dev/null || { echo "log $2 -> $3:" >&2; false; }' \
    "$RESTATECTL" "http://${addr[${CTL_VIA:-n1}]}:5122" || echo "hand: a sequencer of $1 did not move" >&2
}

activate() {
  ctl nodes set-worker-state --nodes "$(node_id "$1")" --worker-state active >/dev/null
}

# The end state restate-fleet verifies: $1 metadata members, every node in $2 alive, every
# partition led.
wait_end_state() {
  local want_members=$1 nodes=$2 members led alive h
  for i in $(seq 600); do
    members=$(ctl metadata-server list-servers 2>/dev/null | grep -c ' Member ' || true)
    led=$(ctl partitions list 2>/dev/null | awk '$1 ~ /^[0-9]+$/ && $3 == "Leader" {print $1}' | sort -u | wc -l)
    alive=0
    for h in $nodes; do
      curl -s -m 1 "http://${addr[$h]}:5122/health" 2>/dev/null | grep -q '"Alive"' && alive=$((alive + 1))
    done
    [ "$members" -ge "$want_members" ] && [ "$led" -ge "${PARTITIONS:-24}" ] \
      && [ "$alive" -eq "$(wc -w <<<"$nodes")" ] && return 0
    [ "$i" -eq 600 ] && { echo "hand: $members metadata members, $led partitions led, $alive nodes alive after 60 s" >&2; return 1; }
    sleep 0.1
  done
}
