// Floor probe for scripts/bench-edge.sh: the same handler behind the WorkerEntrypoint class
// and Proxy wrapping that worker-build's shim (worker-build 0.8.7, src/js/shim.js) puts
// around every Rust Worker, reduced to what runs per request.
import { WorkerEntrypoint } from "cloudflare:workers";
class Entrypoint extends WorkerEntrypoint { async fetch(req) { return new Response('{"ok":true}', { headers: { "content-type": "application/json" } }); } }
const instanceProxyHooks = { set: (t, p, v, r) => Reflect.set(t.instance, p, v, r), has: (t, p) => Reflect.has(t.instance, p) };
const classProxyHooks = { construct(ctor, args, newTarget) {
  const instance = { instance: Reflect.construct(ctor, args, newTarget), ctor, args, newTarget };
  return new Proxy(instance, { ...instanceProxyHooks, get(target, prop, receiver) {
    const original = Reflect.get(target.instance, prop, receiver);
    if (typeof original !== 'function') return original;
    return new Proxy(original, { async apply(target, thisArg, argArray) { return await target.apply(thisArg, argArray); } });
  } }); } };
export default new Proxy(Entrypoint, classProxyHooks);
