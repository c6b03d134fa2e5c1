// The workload's Restate service, served over HTTP/2 on one address of the lab (its bridge):
// - Counter (virtual object): `add` counts one call and returns the new count; `get` reads it.
//   With idempotency keys, a retried call must never count twice.
// - Timer (virtual object): `arm(ms)` sleeps on a durable timer, then records that it fired; the
//   timer must survive node restarts.
// - Job (workflow): `run` sleeps a moment and finishes; `done` says whether it did.
//
// Usage: node service.js ADDRESS PORT
"use strict";

// Node 22 has Promise.withResolvers, which the SDK uses; the machine's Node 20 does not.
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

const http2 = require("node:http2");
const restate = require("@restatedev/restate-sdk");

const counter = restate.object({
  name: "Counter",
  handlers: {
    add: async (ctx) => {
      const count = ((await ctx.get("count")) ?? 0) + 1;
      ctx.set("count", count);
      return count;
    },
    get: restate.handlers.object.shared(async (ctx) => (await ctx.get("count")) ?? 0),
  },
});

const timer = restate.object({
  name: "Timer",
  handlers: {
    arm: async (ctx, ms) => {
      await ctx.sleep(ms);
      ctx.set("fired", Date.now());
      return "fired";
    },
    fired: restate.handlers.object.shared(async (ctx) => (await ctx.get("fired")) ?? null),
  },
});

const job = restate.workflow({
  name: "Job",
  handlers: {
    run: async (ctx, ms) => {
      await ctx.sleep(ms);
      ctx.set("done", true);
      return "done";
    },
    done: async (ctx) => (await ctx.get("done")) ?? false,
  },
});

const [address, port] = process.argv.slice(2);
if (!address || !port) {
  console.error("usage: node service.js ADDRESS PORT");
  process.exit(2);
}
const handler = restate.createEndpointHandler({ services: [counter, timer, job] });
http2
  .createServer(handler)
  .listen(Number(port), address, () => console.log(`workload service on ${address}:${port}`));
