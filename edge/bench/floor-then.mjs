// Floor probe for scripts/bench-edge.sh: the plain module plus 20 Promise.then jobs per
// request: the same work as floor-microtask.mjs, scheduled the way hookvault's edge has
// wasm-bindgen's executor schedule it.
const resolved = Promise.resolve();
export default {
  async fetch() {
    await new Promise((done) => {
      let left = 20;
      const tick = () => --left === 0 && done();
      for (let i = 0; i < 20; i++) resolved.then(tick);
    });
    return new Response('{"ok":true}', { headers: { "content-type": "application/json" } });
  },
};
