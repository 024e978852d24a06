// The baseline for the edge's load benchmark: the same work as the Rust edge for the
// Skytells scheme, written as a JavaScript Worker the way a Workers developer would write
// it: WebCrypto for the webhook signature, and aws4fetch (npm, pinned in edge/package.json)
// for SigV4, with one AwsClient per isolate so that its cache keeps the derived signing
// key per secret, date, region and service.
//   POST /webhooks/skytells  verify x-skytells-signature (HMAC-SHA256, constant time via
//                            crypto.subtle.verify), build the envelope, SendMessage (JSON
//                            protocol) through aws4fetch, answer 202 once SQS took it.
//   POST /_hookvault/probe   verify only, 204.
//   GET /healthz             200 {"ok":true}: the runtime's floor, no work at all.
// Same env as the Rust edge: WEBHOOK_SECRETS (one bare secret here), SQS_QUEUE_URL,
// SQS_ENDPOINT, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
// It builds the Rust edge's envelope (v2: the exact body as base64, its SHA-256 and size,
// the signature header, the content type; docs/envelope.md).
// Like the Rust edge it writes one JSON log line per request (the issue asks for it, and it
// costs every Worker the same), with the same fields.
// Not for production: it exists to be measured against (scripts/bench-edge.sh), which
// loads it beside edge/node_modules/aws4fetch/dist/aws4fetch.esm.mjs as ./aws4fetch.mjs.

import { AwsClient } from "./aws4fetch.mjs";

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
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) return null;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

const toHex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
const sha256hex = async (data) => toHex(await crypto.subtle.digest("SHA-256", typeof data === "string" ? enc.encode(data) : data));

// One client per isolate (per credentials): aws4fetch caches the signing key in it. No
// retries, as the Rust edge answers 503 and lets the provider retry.
let aws = null;
function sqsClient(env) {
  const id = `${env.AWS_ACCESS_KEY_ID}\n${env.AWS_SECRET_ACCESS_KEY}\n${env.AWS_REGION}`;
  if (!aws || aws.id !== id) {
    aws = {
      id,
      client: new AwsClient({
        accessKeyId: env.AWS_ACCESS_KEY_ID,
        secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
        region: env.AWS_REGION,
        service: "sqs",
        retries: 0,
      }),
    };
  }
  return aws.client;
}

function error(status, code, message) {
  return new Response(JSON.stringify({ error: code, message }), { status, headers: { "content-type": "application/json" } });
}

async function verify(request, env, body) {
  const header = request.headers.get("x-skytells-signature");
  if (header === null) return error(401, "missing_signature", "missing x-skytells-signature header");
  // As the Rust edge: bare hex (the provider's SDK) or sha256=<hex> (the course), either case.
  const value = header.trim();
  const sig = hexToBytes(value.startsWith("sha256=") ? value.slice(7) : value);
  if (sig === null) return error(400, "malformed_signature", "expected 64 hex digits, bare or after sha256=");
  const ok = await crypto.subtle.verify("HMAC", await hmacKey(env.WEBHOOK_SECRETS), sig, body);
  return ok ? null : error(401, "bad_signature", "signature does not match any active key");
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
  // The Rust edge's envelope (v2): the exact bytes as base64, with the evidence.
  const bytes = new Uint8Array(body);
  const b64 = typeof bytes.toBase64 === "function" ? bytes.toBase64() : btoa(String.fromCharCode.apply(null, bytes));
  const sigHeaders = JSON.stringify([["x-skytells-signature", request.headers.get("x-skytells-signature")]]);
  const contentType = JSON.stringify(request.headers.get("content-type"));
  const envelope = `{"v":2,"provider":"skytells","scheme":"skytells","event_id":${JSON.stringify(eventId)},"received_at_ms":${Date.now()},"key_id":"current","key_slot":"current","signature_headers":${sigHeaders},"content_type":${contentType},"body_sha256":"${await sha256hex(body)}","body_bytes":${body.byteLength},"body_base64":"${b64}"}`;
  const sqsBody = JSON.stringify({
    QueueUrl: env.SQS_QUEUE_URL,
    MessageBody: envelope,
    MessageAttributes: { event_id: { DataType: "String", StringValue: eventId }, provider: { DataType: "String", StringValue: "skytells" } },
  });
  const endpoint = env.SQS_ENDPOINT || `https://sqs.${env.AWS_REGION}.amazonaws.com/`;
  const headers = { "content-type": "application/x-amz-json-1.0", "x-amz-target": "AmazonSQS.SendMessage" };
  let resp;
  try {
    resp = await sqsClient(env).fetch(endpoint, { method: "POST", headers, body: sqsBody, signal: AbortSignal.timeout(5000) });
  } catch (e) {
    return error(503, "queue_unavailable", "the event could not be queued; retry later");
  }
  const answer = await resp.json().catch(() => ({}));
  if (!resp.ok || !answer.MessageId) return error(503, "queue_unavailable", "the event could not be queued; retry later");
  log.sqs_message_id = answer.MessageId;
  return new Response(JSON.stringify({ status: "queued", event_id: eventId, message_id: answer.MessageId }), { status: 202, headers: { "content-type": "application/json" } });
}
