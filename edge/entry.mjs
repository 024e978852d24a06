// The edge's entry module (wrangler's `main`, workerd's first module); build-edge.sh copies
// it next to worker-build's output as build/entry.mjs.
//
// worker-build's default export wraps the Worker in a Proxy'd WorkerEntrypoint class: each
// request constructs the class, then a Proxy per property read and an async Proxy around
// `fetch`. Measured on this machine, that costs about 20 µs per request (docs/benchmarks.md),
// more than the whole HMAC of a 4 KiB webhook. This module calls the same generated
// handler from a plain module object instead.
//
// Nothing else changes: index.js still loads and instantiates the WASM, and its glue still
// recovers from a Rust panic by itself (worker-build builds it with wasm-bindgen's
// reset-state function and abort handler: after an abort, the next call into the WASM
// starts a fresh instance), so the Proxy's checks are not needed for that. tests/it checks
// it with a test build that panics on one route.
import Edge from "./index.js";

const handle = Edge.prototype.fetch;
if (typeof handle !== "function") {
  // worker-build changed the shape of its output: fail at load, loudly, not per request.
  throw new Error("hookvault-edge: index.js has no fetch handler on its default export");
}

export default {
  fetch(request, env, ctx) {
    return handle.call({ env, ctx }, request);
  },
};
