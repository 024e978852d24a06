// The baseline for the edge's load benchmark: the same work as the Rust edge for the
// Skytells scheme, written as a plain JavaScript Worker on WebCrypto.
//   POST /webhooks/skytells  verify x-skytells-signature (HMAC-SHA256, constant time via
//                            crypto.subtle.verify), build the envelope, SigV4-sign an SQS
//                            SendMessage (JSON protocol), answer 202 once SQS took it.
//   POST /_hookvault/probe   verify only, 204.
//   GET /healthz             200 {"ok":true}: the runtime's floor, no work at all.
// Same env as the Rust edge: WEBHOOK_SECRETS (one bare secret here), SQS_QUEUE_URL,
// SQS_ENDPOINT, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
// Like the Rust edge it writes one JSON log line per request (the issue asks for it, and it
// costs every Worker the same), with the same fields.
// Not for production: it exists to be measured against (scripts/bench-edge.sh).

const enc = new TextEncoder();
let keyCache = null;

async function hmacKey(secret) {
  if (!keyCache || keyCache.secret !== secret) {
    const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
    keyCache = { secret, key };
  }
  return keyCache.key;
}

function hexToBytes(hex) {
  if (!/^[0-9a-f]{64}$/.test(hex)) return null;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

const toHex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
const sha256hex = async (data) => toHex(await crypto.subtle.digest("SHA-256", typeof data === "string" ? enc.encode(data) : data));
const hmac = async (key, data) => {
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return crypto.subtle.sign("HMAC", k, enc.encode(data));
};

function error(status, code, message) {
  return new Response(JSON.stringify({ error: code, message }), { status, headers: { "content-type": "application/json" } });
}

async function verify(request, env, body) {
  const header = request.headers.get("x-skytells-signature");
  if (header === null) return error(401, "missing_signature", "missing x-skytells-signature header");
  if (!header.startsWith("sha256=")) return error(400, "malformed_signature", "expected sha256=<hex>");
  const sig = hexToBytes(header.slice(7));
  if (sig === null) return error(400, "malformed_signature", "expected 64 lowercase hex digits");
  const ok = await crypto.subtle.verify("HMAC", await hmacKey(env.WEBHOOK_SECRETS), sig, body);
  return ok ? null : error(401, "bad_signature", "signature does not match any active key");
}

async function sigv4(env, url, headers, body, now) {
  const amzDate = now.toISOString().replace(/[:-]|\.\d{3}/g, "");
  const date = amzDate.slice(0, 8);
  const u = new URL(url);
  const all = { ...headers, host: u.host, "x-amz-date": amzDate };
  const names = Object.keys(all).map((k) => k.toLowerCase()).sort();
  const lower = Object.fromEntries(Object.entries(all).map(([k, v]) => [k.toLowerCase(), v]));
  const canonical = ["POST", u.pathname || "/", "", ...names.map((n) => `${n}:${String(lower[n]).trim()}`), "", names.join(";"), await sha256hex(body)].join("\n");
  const scope = `${date}/${env.AWS_REGION}/sqs/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, await sha256hex(canonical)].join("\n");
  let k = await hmac(enc.encode("AWS4" + env.AWS_SECRET_ACCESS_KEY), date);
  k = await hmac(k, env.AWS_REGION);
  k = await hmac(k, "sqs");
  k = await hmac(k, "aws4_request");
  const signature = toHex(await hmac(k, toSign));
  return { ...headers, "x-amz-date": amzDate, authorization: `AWS4-HMAC-SHA256 Credential=${env.AWS_ACCESS_KEY_ID}/${scope}, SignedHeaders=${names.join(";")}, Signature=${signature}` };
}

export default {
  async fetch(request, env) {
    const started = Date.now();
    const log = { msg: "request", method: request.method, path: new URL(request.url).pathname, status: 0 };
    const response = await handle(request, env, log);
    log.status = response.status;
    log.latency_ms = Date.now() - started;
    console.log(JSON.stringify(log));
    return response;
  },
};

async function handle(request, env, log) {
  const url = new URL(request.url);
  if (url.pathname === "/healthz" && request.method === "GET") {
    return new Response('{"ok":true}', { headers: { "content-type": "application/json" } });
  }
  if (request.method !== "POST") return error(405, "method_not_allowed", "use POST");
  const body = await request.arrayBuffer();
  if (body.byteLength > 200000) return error(413, "body_too_large", "body is larger than 200000 bytes");
  const refused = await verify(request, env, body);
  if (refused) return refused;
  log.key_id = "current";
  log.key_slot = "current";
  if (url.pathname === "/_hookvault/probe") return new Response(null, { status: 204, headers: { "x-hookvault-key": "current", "x-hookvault-key-slot": "current" } });
  if (url.pathname !== "/webhooks/skytells") return error(404, "not_found", "no such route");
  const text = new TextDecoder().decode(body);
  let prediction;
  try {
    const parsed = JSON.parse(text);
    prediction = parsed && typeof parsed.data === "object" && parsed.data ? parsed.data : parsed;
    if (typeof prediction.id !== "string" || typeof prediction.status !== "string") throw new Error("not a prediction");
  } catch (e) {
    return error(400, "invalid_body", String(e));
  }
  const eventId = `skytells:${prediction.id}:${prediction.status}`;
  log.provider = "skytells";
  log.scheme = "skytells";
  log.event_id = eventId;
  const envelope = `{"v":1,"provider":"skytells","scheme":"skytells","event_id":${JSON.stringify(eventId)},"received_at_ms":${Date.now()},"key_id":"current","key_slot":"current","payload_sha256":"${await sha256hex(body)}","payload":${text}}`;
  const sqsBody = JSON.stringify({
    QueueUrl: env.SQS_QUEUE_URL,
    MessageBody: envelope,
    MessageAttributes: { event_id: { DataType: "String", StringValue: eventId }, provider: { DataType: "String", StringValue: "skytells" } },
  });
  const endpoint = env.SQS_ENDPOINT || `https://sqs.${env.AWS_REGION}.amazonaws.com/`;
  const headers = await sigv4(env, endpoint, { "content-type": "application/x-amz-json-1.0", "x-amz-target": "AmazonSQS.SendMessage" }, sqsBody, new Date());
  let resp;
  try {
    resp = await fetch(endpoint, { method: "POST", headers, body: sqsBody, signal: AbortSignal.timeout(5000) });
  } catch (e) {
    return error(503, "queue_unavailable", "the event could not be queued; retry later");
  }
  const answer = await resp.json().catch(() => ({}));
  if (!resp.ok || !answer.MessageId) return error(503, "queue_unavailable", "the event could not be queued; retry later");
  log.sqs_message_id = answer.MessageId;
  return new Response(JSON.stringify({ status: "queued", event_id: eventId, message_id: answer.MessageId }), { status: 202, headers: { "content-type": "application/json" } });
}
