// Records a CPU profile of a running workerd through its inspector (workerd serve
// --inspector-addr=…): `node record.mjs <inspector host:port> <seconds> <out.cpuprofile>`.
// Used by scripts/profile-edge.sh; `ws` comes with wrangler in edge/node_modules.
import { writeFileSync } from "node:fs";
import WebSocket from "ws";

const [inspector, seconds, out] = process.argv.slice(2);
const targets = await (await fetch(`http://${inspector}/json/list`)).json();
const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
let next = 0;
const waiting = new Map();
const call = (method, params = {}) =>
  new Promise((resolve) => {
    const id = ++next;
    waiting.set(id, resolve);
    ws.send(JSON.stringify({ id, method, params }));
  });
ws.on("message", (raw) => {
  const msg = JSON.parse(raw);
  if (waiting.has(msg.id)) {
    waiting.get(msg.id)(msg);
    waiting.delete(msg.id);
  }
});
await new Promise((resolve) => ws.on("open", resolve));
await call("Profiler.enable");
await call("Profiler.setSamplingInterval", { interval: 50 });
await call("Profiler.start");
await new Promise((resolve) => setTimeout(resolve, Number(seconds) * 1000));
const { result } = await call("Profiler.stop");
writeFileSync(out, JSON.stringify(result.profile));
ws.close();
