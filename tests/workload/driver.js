// The workload's driver: traffic through a rollout, then the proof that nothing was lost or
// doubled. Bounded in count and time, and it sends only to the ingress URLs it is given (the
// lab's own hosts).
//
// 1. arms TIMERS durable timers (Timer/<id>/arm, TIMER_MS each) and starts JOBS workflows;
// 2. calls Counter/<key>/add RATE times a second, each with its own idempotency key, spread over
//    KEYS keys, retrying a failed call (connection refused, timeout, 5xx) on the next ingress
//    until it succeeds or CALL_DEADLINE_MS pass;
// 3. stops when the file STOP exists (or after MAX_SECONDS), lets the calls in flight finish;
// 4. verifies: per key, the returned values are exactly 1..n and the stored count is n (nothing
//    lost, nothing doubled); every timer fired, no earlier than it was set for; every workflow
//    finished;
// 5. writes the report (JSON) to OUT and exits 0 when verified, 1 when not.
//
// Usage: node driver.js --ingress URL[,URL...] --out FILE --stop FILE [--rate 20] [--keys 4]
//        [--timers 8] [--timer-ms 10000] [--jobs 4] [--call-deadline-ms 60000] [--max-seconds 600]
//        [--trace FILE]
// --trace writes every attempt (ingress, start and end in ms since epoch, outcome) as JSON lines:
// where an outage came from (a node that hangs, one that refuses, a partition without a leader).
"use strict";

const fs = require("node:fs");

function options(argv) {
  const opts = {
    ingress: [],
    out: null,
    stop: null,
    trace: null,
    rate: 20,
    keys: 4,
    timers: 8,
    timerMs: 10000,
    jobs: 4,
    callDeadlineMs: 60000,
    maxSeconds: 600,
  };
  const names = {
    "--rate": "rate",
    "--keys": "keys",
    "--timers": "timers",
    "--timer-ms": "timerMs",
    "--jobs": "jobs",
    "--call-deadline-ms": "callDeadlineMs",
    "--max-seconds": "maxSeconds",
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === "--ingress") opts.ingress = value.split(",").filter(Boolean);
    else if (flag === "--out") opts.out = value;
    else if (flag === "--stop") opts.stop = value;
    else if (flag === "--trace") opts.trace = value;
    else if (names[flag]) {
      const n = Number(value);
      if (!Number.isFinite(n) || n < 0) throw new Error(`${flag} takes a number, not ${value}`);
      opts[names[flag]] = n;
    } else throw new Error(`unknown option ${flag}`);
  }
  if (!opts.ingress.length || !opts.out || !opts.stop) {
    throw new Error("--ingress, --out and --stop are required");
  }
  // Bounds: the lab's hosts take this much without trouble, and a run always ends.
  opts.rate = Math.min(Math.max(opts.rate, 1), 100);
  opts.maxSeconds = Math.min(opts.maxSeconds, 1800);
  return opts;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/// One request, retried on the next ingress until it succeeds or `deadline` (ms since epoch)
/// passes; it starts at the ingress that answered last. Returns { ok, value, attempts, ms }.
async function call(opts, path, body, idempotencyKey, deadline, state) {
  const started = Date.now();
  let attempts = 0;
  let lastError = "";
  let index = state.good;
  while (Date.now() < deadline) {
    const base = opts.ingress[index % opts.ingress.length];
    attempts++;
    const attempt = { path, ingress: index % opts.ingress.length, start: Date.now() };
    state.attempts.push(attempt);
    const headers = { "content-type": "application/json" };
    if (idempotencyKey) headers["idempotency-key"] = idempotencyKey;
    try {
      const response = await fetch(base + path, {
        method: "POST",
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(Math.max(1, Math.min(10000, deadline - Date.now()))),
      });
      const text = await response.text();
      Object.assign(attempt, { end: Date.now(), outcome: response.status });
      if (response.ok) {
        state.good = index % opts.ingress.length;
        return { ok: true, value: text ? JSON.parse(text) : null, attempts, ms: Date.now() - started };
      }
      lastError = `${response.status} ${text.slice(0, 200)}`;
      // A node that just joined answers 404 for a registered service until it has the service
      // schema (seen growing 3 -> 5): counted, and retried on the next ingress. Any other 4xx but
      // a conflict is the workload's own mistake: retrying cannot help.
      if (response.status === 404) state.notFound++;
      else if (response.status >= 400 && response.status < 500 && response.status !== 409) break;
    } catch (err) {
      lastError = String(err && err.cause ? err.cause.code || err.cause : err);
      Object.assign(attempt, { end: Date.now(), outcome: lastError });
    }
    index++;
    await sleep(100);
  }
  return { ok: false, error: lastError, attempts, ms: Date.now() - started };
}

function percentile(sorted, p) {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main() {
  const opts = options(process.argv.slice(2));
  const run = `${process.pid}-${Date.now().toString(36)}`;
  const state = { good: 0, notFound: 0, attempts: [] };
  const problems = [];
  const deadline = () => Date.now() + opts.callDeadlineMs;

  // 1. Timers and workflows, before the rollout.
  const timers = [];
  for (let i = 0; i < opts.timers; i++) {
    const id = `timer-${run}-${i}`;
    const armedAt = Date.now();
    const r = await call(opts, `/Timer/${id}/arm/send`, opts.timerMs, `arm-${id}`, deadline(), state);
    if (!r.ok) problems.push(`timer ${id} could not be armed: ${r.error}`);
    timers.push({ id, armedAt });
  }
  const jobs = [];
  for (let i = 0; i < opts.jobs; i++) {
    const id = `job-${run}-${i}`;
    const r = await call(opts, `/Job/${id}/run/send`, 500, undefined, deadline(), state);
    if (!r.ok) problems.push(`workflow ${id} could not be started: ${r.error}`);
    jobs.push(id);
  }

  // 2. and 3. Counter calls at a fixed rate until told to stop.
  const calls = [];
  const inFlight = [];
  const started = Date.now();
  const interval = 1000 / opts.rate;
  for (let seq = 0; ; seq++) {
    if (fs.existsSync(opts.stop) || Date.now() - started > opts.maxSeconds * 1000) break;
    const key = `counter-${run}-${seq % opts.keys}`;
    const record = { seq, key, start: Date.now() };
    calls.push(record);
    inFlight.push(
      call(opts, `/Counter/${key}/add`, undefined, `add-${run}-${seq}`, deadline(), state).then((r) => {
        Object.assign(record, r, { end: Date.now() });
      }),
    );
    const next = started + (seq + 1) * interval;
    await sleep(Math.max(0, next - Date.now()));
  }
  const stopped = Date.now();
  await Promise.all(inFlight);

  // 4. Verification.
  const perKey = new Map();
  for (const c of calls) {
    if (!perKey.has(c.key)) perKey.set(c.key, []);
    if (c.ok) perKey.get(c.key).push(c.value);
  }
  let lost = calls.filter((c) => !c.ok).length;
  let doubled = 0;
  for (const [key, values] of perKey) {
    const r = await call(opts, `/Counter/${key}/get`, undefined, undefined, deadline(), state);
    if (!r.ok) {
      problems.push(`cannot read ${key}: ${r.error}`);
      continue;
    }
    const sorted = [...values].sort((a, b) => a - b);
    const seen = new Set(sorted);
    doubled += sorted.length - seen.size;
    for (let n = 1; n <= sorted.length; n++) {
      if (!seen.has(n)) {
        problems.push(`${key}: value ${n} was never returned`);
        break;
      }
    }
    if (r.value !== sorted.length) {
      problems.push(`${key}: stored count ${r.value}, but ${sorted.length} calls succeeded`);
      if (r.value > sorted.length) doubled += r.value - sorted.length;
    }
  }
  if (lost) {
    const why = calls.filter((c) => !c.ok).map((c) => c.error);
    problems.push(`${lost} calls never succeeded within ${opts.callDeadlineMs} ms: ${why.slice(0, 3).join("; ")}`);
  }
  if (doubled) problems.push(`${doubled} calls counted twice`);

  let fired = 0;
  const timersDeadline = Date.now() + opts.timerMs + 60000;
  for (const t of timers) {
    for (;;) {
      const r = await call(opts, `/Timer/${t.id}/fired`, undefined, undefined, deadline(), state);
      if (r.ok && r.value !== null) {
        fired++;
        if (r.value < t.armedAt + opts.timerMs) problems.push(`timer ${t.id} fired early`);
        break;
      }
      if (Date.now() > timersDeadline) {
        problems.push(`timer ${t.id} never fired`);
        break;
      }
      await sleep(250);
    }
  }
  let done = 0;
  for (const id of jobs) {
    const r = await call(opts, `/Job/${id}/done`, undefined, undefined, deadline(), state);
    if (r.ok && r.value === true) done++;
    else problems.push(`workflow ${id} did not finish (${r.ok ? r.value : r.error})`);
  }

  // The clients' view: latency, retries and the longest stretch without a success.
  const latencies = calls.filter((c) => c.ok).map((c) => c.ms).sort((a, b) => a - b);
  const successes = calls.filter((c) => c.ok).map((c) => c.end).sort((a, b) => a - b);
  let longestGap = 0;
  let last = started;
  for (const at of successes) {
    longestGap = Math.max(longestGap, at - last);
    last = at;
  }
  longestGap = Math.max(longestGap, Math.max(0, stopped - last));
  const report = {
    seconds: (stopped - started) / 1000,
    calls: calls.length,
    succeeded: latencies.length,
    lost,
    doubled,
    retries: calls.reduce((sum, c) => sum + Math.max(0, (c.attempts || 1) - 1), 0),
    not_found_answers: state.notFound,
    longest_gap_ms: longestGap,
    latency_ms: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies.at(-1) || 0 },
    timers: { armed: timers.length, fired },
    workflows: { started: jobs.length, done },
    verified: problems.length === 0,
    problems,
  };
  fs.writeFileSync(opts.out, JSON.stringify(report, null, 2));
  if (opts.trace) fs.writeFileSync(opts.trace, state.attempts.map((a) => JSON.stringify(a)).join("\n") + "\n");
  process.exit(report.verified ? 0 : 1);
}

main().catch((err) => {
  console.error(`workload driver: ${err && err.stack ? err.stack : err}`);
  process.exit(2);
});
