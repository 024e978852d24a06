"""moto_server, plus what moto does not do as AWS does for us:

1. Secrets Manager: RotateSecret running a rotation Lambda that runs elsewhere (our rotator
   under `cargo lambda watch`), and ListSecretVersionIds' creation dates (below).
2. SQS: SendMessage and SendMessageBatch refuse what real SQS refuses (further below).
3. S3: a PUT (PutObject, UploadPart, ...) keeps its body as sent whatever its Content-Type,
   form types included (at the end of this file).

RotateSecret
(https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotateSecret.html):

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
* `RotateImmediately=false` configures rotation (function, schedule) and, as AWS does,
  runs the configuration test: testSecret alone on a new AWSPENDING version with no
  value, which is removed afterwards (synchronously here, so a test that rotates next
  finds no pending version).

ListSecretVersionIds also reports each version's real creation date (moto says "now").

SendMessage / SendMessageBatch, in both of moto's protocols (JSON, as aws-sdk-sqs and
boto3 >= 1.34 speak it, and query):

* characters: the body and every String/Number message attribute value may hold only
  #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF; anything else is refused
  with `InvalidMessageContents` (HTTP 400); moto stores it as sent.
  https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
* size: UTF-8 bytes of the body plus, for every message attribute, its name, data type and
  value (message system attributes such as AWSTraceHeader do not count), at most the
  queue's MaximumMessageSize and never more than 1,048,576 bytes; over it,
  `InvalidParameterValue` "One or more parameters are invalid. Reason: Message must be
  shorter than N bytes." (moto counts characters of the body only).
  https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html
  https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html
  A new queue's MaximumMessageSize is 1,048,576 unless CreateQueue says otherwise, which
  is moto 5.2.5's own default too.
  https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html
* batch: each entry is judged alone; a refused entry is listed in `Failed` with its code
  (SenderFault true) and the others are sent (moto refuses the whole batch for one
  oversized entry). The request-level errors stay moto's (TooManyEntriesInBatchRequest,
  BatchEntryIdsNotDistinct, InvalidBatchEntryId, BatchRequestTooLong), but the batch's
  total is counted as above (bytes, attributes included) against 1,048,576.
  https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html

S3 PUT bodies sent as `application/x-www-form-urlencoded` or `multipart/form-data`:

* S3 stores a PUT's body as the object's data, byte for byte; Content-Type is only stored
  as metadata and returned by GetObject.
  https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html
  https://docs.aws.amazon.com/AmazonS3/latest/API/API_UploadPart.html
  moto 5.2.5 parses such a body as a form and stores an empty object, or one form field's
  value (details beside the code). This wrapper keeps S3 PUT bodies unparsed; S3's
  browser-form POST upload (POST Object) and every other service's form (the SQS query
  protocol's `Action=SendMessage&...`) are still parsed as moto parses them.
* An unsigned request (a presigned PUT URL) with a form Content-Type and a body that is not
  UTF-8 no longer hangs: moto's dispatcher read the body to look for `Action=` and did not
  put it back.

S3 conditional writes (PutObject with `If-None-Match: *` or `If-Match`, DeleteObject with
`If-Match`):

* AWS: "If multiple conditional writes occur for the same object name, the first write
  operation to finish succeeds" and the others get 412 Precondition Failed (or 409
  ConditionalRequestConflict, to retry); the check and the write are one atomic step.
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html
  https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html
* moto 5.2.5 checks the headers as AWS does (412 PreconditionFailed; 404 NoSuchKey for
  `If-Match` on a missing key), but the check and the write are separate steps in a
  threaded server: 16 concurrent `If-None-Match: *` writes gave two winners for 2 keys
  out of 300. Here S3 PutObject and DeleteObject run one at a time, so the check and the
  write are atomic as in S3; moto's own code does both, unchanged.

Every other call is moto's own.

Usage: python serve.py -H 127.0.0.1 -p PORT   (the same arguments as moto_server)
"""

import io
import json
import os
import re
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
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.s3.responses import S3Response
from moto.server import main
from moto.sqs import models as sqs_models
from moto.sqs.constants import MAXIMUM_MESSAGE_LENGTH
from moto.sqs.exceptions import (
    BatchEntryIdsNotDistinct,
    BatchRequestTooLong,
    InvalidBatchEntryId,
    InvalidParameterValue,
    SQSException,
    TooManyEntriesInBatchRequest,
)
from moto.sqs.responses import SQSResponse

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


def _invoke(url, secret, token, step):
    """Invokes one rotation step; (failed, the answer or the error)."""
    event = {"Step": step, "SecretId": secret.arn, "ClientRequestToken": token}
    req = urllib.request.Request(
        url,
        data=json.dumps(event).encode(),
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=300) as resp:
            body = resp.read().decode(errors="replace")
            return resp.status != 200 or '"errorType"' in body, body
    except (urllib.error.URLError, OSError) as e:
        return True, str(e)


def _configuration_test(url, secret):
    """What AWS does for RotateImmediately=false: "Secrets Manager tests the rotation
    configuration by running the testSecret step of the Lambda rotation function. The test
    creates an AWSPENDING version of the secret and then removes it."
    (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotateSecret.html)
    The outcome is printed; as on AWS, RotateSecret itself still succeeds (a failed test
    shows as the function's error)."""
    token = str(uuid.uuid4())
    secret.versions[token] = {
        "createdate": int(time.time()),
        "version_id": token,
        "version_stages": ["AWSPENDING"],
    }
    try:
        failed, body = _invoke(url, secret, token, "testSecret")
    finally:
        secret.versions.pop(token, None)
    outcome = "failed" if failed else "passed"
    print(f"configuration test of {secret.name} {outcome}: {body[:300]}", file=sys.stderr, flush=True)


def _run_steps(url, secret, token):
    for step in STEPS:
        failed, body = _invoke(url, secret, token, step)
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
        if routes[arn]:
            _configuration_test(routes[arn], secret)
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


# --- SQS: SendMessage / SendMessageBatch ------------------------------------------------

# The characters a message may hold (the XML 1.0 Char production). Current API references
# say SQS refuses anything else with InvalidMessageContents; some SDK docs say it instead
# replaces such characters with U+FFFD. Either way what is queued is not what was sent, so
# the local stack refuses loudly: a test must not pass here on bytes AWS would not keep.
_DISALLOWED = re.compile(r"[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")


class InvalidMessageContents(SQSException):
    """SQS's own error shape (HTTP 400), serialized by moto for either protocol as it
    serializes its own SQS errors: JSON `__type` ...#InvalidMessageContents and the
    `x-amzn-query-error: InvalidMessageContents;Sender` header, or the query XML `Code`.
    Only the code is documented; the message follows the wording SQS is reported to use."""

    code = "InvalidMessageContents"


def _check_characters(body, attributes):
    bad = _DISALLOWED.search(body or "")
    if bad:
        raise InvalidMessageContents(
            f"Invalid binary character '#x{ord(bad.group()):X}' was found in the message "
            "body, the set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | "
            "#xE000 to #xFFFD | #x10000 to #x10FFFF"
        )
    for name, value in (attributes or {}).items():
        kind = str((value or {}).get("DataType") or "").split(".")[0]
        text = (value or {}).get("StringValue")
        if kind in ("String", "Number") and isinstance(text, str):
            bad = _DISALLOWED.search(text)
            if bad:
                raise InvalidMessageContents(
                    f"Invalid binary character '#x{ord(bad.group()):X}' was found in the "
                    f"value of message attribute '{name}', the set of allowed characters "
                    "is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to "
                    "#x10FFFF"
                )


def _utf8_len(text):
    # surrogatepass: a lone surrogate (possible from a JSON "\ud800" escape) is refused by
    # _check_characters first, but must not crash a size count made before it.
    return len(str(text).encode("utf-8", "surrogatepass"))


def _message_size(body, attributes):
    """UTF-8 bytes of the body, plus each message attribute's name, data type and value."""
    size = _utf8_len(body or "")
    for name, value in (attributes or {}).items():
        value = value or {}
        size += _utf8_len(name) + _utf8_len(value.get("DataType") or "")
        if value.get("StringValue") is not None:
            size += _utf8_len(value["StringValue"])
        elif value.get("BinaryValue") is not None:
            raw = value["BinaryValue"]  # moto hands it over decoded (bytes)
            size += len(raw) if isinstance(raw, (bytes, bytearray)) else _utf8_len(raw)
    return size


def _check_message(queue, body, attributes):
    _check_characters(body, attributes)
    limit = min(int(queue.maximum_message_size), MAXIMUM_MESSAGE_LENGTH)
    if _message_size(body, attributes) > limit:
        raise InvalidParameterValue(
            "One or more parameters are invalid. Reason: Message must be shorter than "
            f"{limit} bytes."
        )


_original_send = SQSResponse.send_message


def send_message(self):
    """SendMessage. Hooked at the API handler, not `SQSBackend.send_message`: moto's SNS,
    EventBridge and S3-notification deliveries into SQS call the backend too, and checking
    them there would fail moto's Publish / PutEvents / PutObject with an SQS error."""
    queue = self.sqs_backend.get_queue(self._get_queue_name())
    _check_message(
        queue, self._get_param("MessageBody"), self._get_param("MessageAttributes", {})
    )
    return _original_send(self)


_original_batch = sqs_models.SQSBackend.send_message_batch


def send_message_batch(self, queue_name, entries):
    """SendMessageBatch (only the API handler calls it). moto checks every entry first and
    refuses the whole request for one bad entry; AWS reports each entry on its own. So the
    request-level checks run here, in moto's order, on every entry; each entry is then
    judged alone, and moto's own method sends the rest (its checks pass again on them)."""
    queue = self.get_queue(queue_name)
    if any(not re.match(r"^[\w-]{1,80}$", e["Id"]) for e in entries.values()):
        raise InvalidBatchEntryId()
    total = sum(
        _message_size(e.get("MessageBody"), e.get("MessageAttributes"))
        for e in entries.values()
    )
    if total > MAXIMUM_MESSAGE_LENGTH:
        raise BatchRequestTooLong(total)
    duplicate = self._get_first_duplicate_id([e["Id"] for e in entries.values()])
    if duplicate:
        raise BatchEntryIdsNotDistinct(duplicate)
    if len(entries) > 10:
        raise TooManyEntriesInBatchRequest(len(entries))

    failed, rest = [], {}
    for key, entry in entries.items():
        try:
            _check_message(queue, entry.get("MessageBody"), entry.get("MessageAttributes"))
        except SQSException as err:
            failed.append(
                {
                    "Id": entry["Id"],
                    "SenderFault": True,
                    "Code": err.code,
                    "Message": err.message,
                }
            )
        else:
            rest[key] = entry
    if not rest:
        return [], failed
    messages, moto_failed = _original_batch(self, queue_name, rest)
    return messages, failed + moto_failed


SQSResponse.send_message = send_message
sqs_models.SQSBackend.send_message_batch = send_message_batch


# --- S3: PUT bodies with a form Content-Type --------------------------------------------

_original_s3_setup_class = S3Response.setup_class


def s3_setup_class(self, request, full_url=None, headers=None):
    """Every S3 request goes through here before moto reads its body.

    What moto does: `BaseResponse.setup_class` takes the body from werkzeug's
    `request.data`, i.e. `get_data(parse_form_data=True)`. For a Content-Type of
    `application/x-www-form-urlencoded` or `multipart/form-data` werkzeug first parses
    the stream into `request.form` / `request.files`, which consumes it, so the body moto
    gets is b"". moto then takes, if the form has a field `key`, the field `file` (or the
    last field's name) as the body, and otherwise any uploaded file's content; failing
    all that PutObject / UploadPart store an empty object (with the client's checksum
    headers, so an SDK then rejects its own GetObject). The form's fields also replace
    the URL query in moto's `querystring`.

    What S3 does: for PutObject "the body is the object's data"; Content-Type is only
    stored as metadata (https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html),
    and UploadPart's body is the part's data likewise. No S3 PUT takes a form: the only
    form S3 reads is the browser-based POST Object upload (a POST, left alone here).

    So for an S3 PUT, mark the form as already parsed and empty, as werkzeug itself records
    a parsed form (`Request._load_form_data` sets `form` and `files` in the instance dict
    and returns early once they are there). `request.data` then reads the stream as sent,
    and moto goes on exactly as for any other Content-Type; the Content-Type header is
    stored as moto stores it."""
    if request.method == "PUT" and "form" not in request.__dict__:
        request.__dict__["form"] = request.parameter_storage_class()
        request.__dict__["files"] = request.parameter_storage_class()
    return _original_s3_setup_class(self, request, full_url, headers)


S3Response.setup_class = s3_setup_class


_original_get_body = DomainDispatcherApplication._get_body


def _get_body(self, environ):
    """moto's dispatcher, for a request without an Authorization header (a presigned URL),
    reads a form-typed body to find the service from `Action=...`, decodes it as UTF-8 and
    puts it back only if that worked. A body that is not UTF-8 (a presigned PUT of binary
    data sent as application/x-www-form-urlencoded) was thus read and dropped, and the
    S3 handler then waited for bytes already read: the request hung. Here the bytes moto
    reads are put back whatever moto made of them; its routing is unchanged."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    simple_form = str(environ.get("CONTENT_TYPE", "")).startswith(
        "application/x-www-form-urlencoded"
    )
    if not (simple_form and length > 0 and "wsgi.input" in environ):
        return _original_get_body(self, environ)
    raw = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(raw)
    body = _original_get_body(self, environ)
    environ["wsgi.input"] = io.BytesIO(raw)
    return body


DomainDispatcherApplication._get_body = _get_body


# --- S3: conditional writes, atomic -----------------------------------------------------

_s3_write_lock = threading.Lock()
_original_put_object = S3Response.put_object
_original_delete_object = S3Response.delete_object


def put_object(self):
    """PutObject: moto's, one at a time, so that its `If-None-Match` / `If-Match` check
    and its write happen as one step, as S3 guarantees for conditional writes
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html).
    The body is already read: only moto's in-memory store work is serialised."""
    with _s3_write_lock:
        return _original_put_object(self)


def delete_object(self):
    """DeleteObject: moto's, under the same lock, so an `If-Match` delete cannot interleave
    with a conditional write of the same object."""
    with _s3_write_lock:
        return _original_delete_object(self)


S3Response.put_object = put_object
S3Response.delete_object = delete_object

if __name__ == "__main__":
    main(sys.argv[1:])
