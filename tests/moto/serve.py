"""moto_server, plus the one thing moto cannot do alone: RotateSecret running a rotation
Lambda that runs elsewhere (our rotator under `cargo lambda watch`).

AWS's RotateSecret stages a new version id with AWSPENDING and no value, then invokes the
rotation function with createSecret, setSecret, testSecret and finishSecret in turn,
stopping at the first failure. moto can only run a function from its own Lambda backend
(docker); without one it moves AWSCURRENT itself, which is not what AWS does.

So this wrapper replaces `rotate_secret` for the rotation functions named in the JSON file
`$HOOKVAULT_ROTATION_ROUTES` (`{"<lambda arn>": "<invoke url>" | null}`):

* the version is staged as AWS stages it (AWSPENDING, no value);
* with an invoke URL, the four steps run in a background thread, as AWS runs them
  asynchronously; LastRotatedDate is set once finishSecret succeeds;
* with null, nothing is invoked: a test drives the steps itself (or stops between them,
  as a crash would);
* `RotateImmediately=false` only configures rotation (function, schedule).

ListSecretVersionIds also reports each version's real creation date (moto says "now").
Every other call is moto's own.

Usage: python serve.py -H 127.0.0.1 -p PORT   (the same arguments as moto_server)
"""

import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

from moto.secretsmanager import models
from moto.secretsmanager.exceptions import (
    InvalidRequestException,
    SecretNotFoundException,
)
from moto.server import main

_original = models.SecretsManagerBackend.rotate_secret
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


def _routes():
    path = os.environ.get("HOOKVAULT_ROTATION_ROUTES")
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _run_steps(url, secret, token):
    for step in STEPS:
        event = {"Step": step, "SecretId": secret.arn, "ClientRequestToken": token}
        req = urllib.request.Request(
            url,
            data=json.dumps(event).encode(),
            headers={"content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=300) as resp:
                body = resp.read().decode(errors="replace")
                failed = resp.status != 200 or '"errorType"' in body
        except (urllib.error.URLError, OSError) as e:
            body, failed = str(e), True
        if failed:
            print(f"rotation of {secret.name} stopped at {step}: {body[:300]}", file=sys.stderr, flush=True)
            return
    secret.last_rotation_date = int(time.time())
    print(f"rotation of {secret.name} to {token} finished", file=sys.stderr, flush=True)


def rotate_secret(
    self,
    secret_id,
    client_request_token=None,
    rotation_lambda_arn=None,
    rotation_rules=None,
    rotate_immediately=True,
):
    if not self._is_valid_identifier(secret_id):
        raise SecretNotFoundException()
    secret = self.secrets[secret_id]
    arn = rotation_lambda_arn or getattr(secret, "rotation_lambda_arn", None)
    routes = _routes()
    if not arn or arn not in routes:
        return _original(
            self,
            secret_id,
            client_request_token,
            rotation_lambda_arn,
            rotation_rules,
            rotate_immediately,
        )
    for version in secret.versions.values():
        stages = version["version_stages"]
        if "AWSPENDING" in stages and "AWSCURRENT" not in stages:
            raise InvalidRequestException(
                "A previous rotation isn't complete. That rotation will be reattempted."
            )
    secret.rotation_lambda_arn = arn
    if rotation_rules and "AutomaticallyAfterDays" in rotation_rules:
        secret.auto_rotate_after_days = rotation_rules["AutomaticallyAfterDays"]
    secret.rotation_enabled = True
    secret.rotation_requested = True  # moto describes rotation only once this is set
    if not rotate_immediately:
        return secret.to_short_dict(include_version_id=False)
    token = client_request_token or str(uuid.uuid4())
    secret.remove_version_stages_from_old_versions(["AWSPENDING"])
    secret.versions[token] = {
        "createdate": int(time.time()),
        "version_id": token,
        "version_stages": ["AWSPENDING"],
    }
    url = routes[arn]
    if url:
        threading.Thread(target=_run_steps, args=(url, secret, token), daemon=True).start()
    return secret.to_short_dict(version_id=token)


_original_list = models.SecretsManagerBackend.list_secret_version_ids


def list_secret_version_ids(self, secret_id):
    """moto reports every version as created now; AWS reports when it was created (the
    rotator's schedule tells a stuck rotation from one in progress by that date)."""
    out = json.loads(_original_list(self, secret_id))
    versions = self.secrets[secret_id].versions
    for v in out.get("Versions", []):
        created = versions.get(v["VersionId"], {}).get("createdate")
        if created is not None:
            v["CreatedDate"] = created
    return json.dumps(out)


models.SecretsManagerBackend.rotate_secret = rotate_secret
models.SecretsManagerBackend.list_secret_version_ids = list_secret_version_ids

if __name__ == "__main__":
    main(sys.argv[1:])
