#!/usr/bin/env bash
# A rolling change by hand: member after member, the change, a restart, the next once it is
# Alive. With GENTLE=1 the same steps restate-fleet takes: before its restart a member's
# partition leaders and log sequencers move away, after it its worker is active again. Ends when
# every partition is led. Prints "step" lines.
#
# Environment (besides lib.sh's): MEMBERS (in order), SERVERS (the number of metadata members, for
# the end state), GENTLE; the change: FROM and TO (the text `sed` replaces in restate.toml), or
# UPGRADE (a restate-server binary, copied to the member before its leaders move), or
# RESTART_ONLY=1 (no change: each member restarted as it is).
source "$(dirname "$0")/lib.sh"
: "${MEMBERS:?}" "${SERVERS:?}"
bin=/usr/local/bin/restate-server
for h in $MEMBERS; do
  via=$(for o in $MEMBERS; do if [ "$o" != "$h" ]; then echo "$o"; break; fi; done)
  if [ "${RESTART_ONLY:-0}" = 1 ]; then
    change=true
  elif [ -n "${UPGRADE:-}" ]; then
    on "$h" "cat > $bin.new && chmod 755 $bin.new" <"$UPGRADE"
    change="mv -f $bin.new $bin"
  else
    change="sed -i 's/${FROM:?}/${TO:?}/' $conf"
  fi
  if [ "${GENTLE:-0}" = 1 ]; then CTL_VIA=$via drain "$h"; fi
  on "$h" "$change && $svc restart"
  wait_alive "$h"
  if [ "${GENTLE:-0}" = 1 ]; then CTL_VIA=$via activate "$h"; fi
  step "$h"
done
wait_end_state "$SERVERS" "$MEMBERS"
step verify
