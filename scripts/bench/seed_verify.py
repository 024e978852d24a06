"""The seed's webhook verification, timed on the same bodies as the Rust benchmark.

The seed's FastAPI handler does, per request:
    expected = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    hmac.compare_digest(f"sha256={expected}", x_skytells_signature or "")
This script times exactly that (no web framework around it), then reads criterion's
estimates for `verify/skytells/*` and prints both with the ratio.
"""
import hashlib
import hmac
import json
import os
import platform
import sys
import timeit

SECRET = "bench-secret-0123456789abcdef"
PATTERN = b'{"id":"pred_abc123","status":"succeeded","output":["https://cdn.skytells.ai/x.mp4"]}'
SIZES = [("1KiB", 1024), ("64KiB", 64 * 1024), ("1MiB", 1024 * 1024)]


def body(n):
    return (PATTERN * (n // len(PATTERN) + 1))[:n]


def seed_verify(body, header):
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"sha256={expected}", header or "")


def time_python(b):
    header = "sha256=" + hmac.new(SECRET.encode(), b, hashlib.sha256).hexdigest()
    assert seed_verify(b, header)
    number = max(1, int(2_000_000 / max(len(b), 1)))
    runs = sorted(timeit.repeat(lambda: seed_verify(b, header), number=number, repeat=15))
    return runs[len(runs) // 2] / number * 1e9  # ns: median of 15 runs, as criterion's median


def rust_ns(target_dir, label):
    path = os.path.join(target_dir, "criterion", "verify_skytells", label, "new", "estimates.json")
    if not os.path.exists(path):
        path = os.path.join(target_dir, "criterion", "verify", "skytells", label, "new", "estimates.json")
    with open(path) as f:
        return json.load(f)["median"]["point_estimate"]


def main():
    target_dir = sys.argv[1] if len(sys.argv) > 1 else "target"
    h = hmac.new(b"k", digestmod="sha256")
    backend = type(getattr(h, "_hmac", h)).__module__
    print(f"python {platform.python_version()} (hmac backend: {backend}); rust: criterion median")
    print(f"{'body':>6} | {'rust (hookvault-core)':>22} | {'python (seed)':>16} | {'speed-up':>8}")
    print("-" * 64)
    for label, n in SIZES:
        py = time_python(body(n))
        rs = rust_ns(target_dir, label)
        gbps = lambda ns: n / ns  # bytes per ns = GB/s
        print(f"{label:>6} | {rs/1000:9.2f} µs {gbps(rs):5.2f} GB/s | {py/1000:7.2f} µs {gbps(py):4.2f} GB/s | {py/rs:7.2f}x")


if __name__ == "__main__":
    main()
