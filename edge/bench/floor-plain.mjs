// Floor probe for scripts/bench-edge.sh: the cheapest possible Worker, a plain module.
export default { async fetch(req) { return new Response('{"ok":true}', { headers: { "content-type": "application/json" } }); } };
