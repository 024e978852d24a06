// Floor probe for scripts/bench-edge.sh: the plain module plus 20 queueMicrotask calls per
// request. Against floor-then.mjs it prices one queueMicrotask in workerd (what
// wasm-bindgen's executor would use per wake; see docs/edge.md, "The futures executor").
export default {
  async fetch() {
    await new Promise((done) => {
      let left = 20;
      const tick = () => --left === 0 && done();
      for (let i = 0; i < 20; i++) queueMicrotask(tick);
    });
    return new Response('{"ok":true}', { headers: { "content-type": "application/json" } });
  },
};
