// Summarises a .cpuprofile: `node summarize.mjs <file> [rows]`. Prints the share of
// samples by kind (Rust in WASM, the JS glue, the runtime's native code, GC, idle), then
// the functions with the most samples of their own (self) and in all (inclusive).
// Percentages are of all samples, idle included; the inspector makes console.log look
// dearer than it is.
import { readFileSync } from "node:fs";

const [file, rowsArg] = process.argv.slice(2);
const rows = Number(rowsArg ?? 25);
const profile = JSON.parse(readFileSync(file, "utf8"));
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const counts = new Map();
for (const s of profile.samples) counts.set(s, (counts.get(s) ?? 0) + 1);
const total = profile.samples.length;
const name = (n) => {
  const f = n.callFrame;
  return `${f.functionName || "(anonymous)"} ${f.url.split("/").pop()}:${f.columnNumber}`;
};
const kind = (n) => {
  const { functionName: f, url } = n.callFrame;
  if (f.startsWith("(")) return f;
  if (url.includes(".wasm") || f.startsWith("wasm-function") || f.includes(" shim") || f.includes("catch wrapper")) return "Rust (WASM)";
  if (url.endsWith(".js") || url.endsWith(".mjs")) return "JavaScript (glue, entry)";
  return "runtime native";
};
const self = new Map();
const kinds = new Map();
const inclusive = new Map();
for (const [id, c] of counts) {
  const n = nodes.get(id);
  self.set(name(n), (self.get(name(n)) ?? 0) + c);
  kinds.set(kind(n), (kinds.get(kind(n)) ?? 0) + c);
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const k = name(nodes.get(cur));
    if (!seen.has(k)) {
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + c);
    }
  }
}
const table = (m, n) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`)
    .join("\n");
console.log(`${total} samples\n\n-- by kind --\n${table(kinds, 10)}\n\n-- self --\n${table(self, rows)}\n\n-- inclusive --\n${table(inclusive, rows)}`);
