#!/usr/bin/env python3
"""hookvault's own rules for infra/template.yaml, on top of cfn-lint and `sam validate`.

    .tools/venv-sam/bin/python infra/check_template.py [TEMPLATE]    # exit 0, or 1 + problems

Runs under the venv that scripts/lib/tools.sh's hv_sam installs, for cfn-lint's YAML decoder
(`cfnlint.decode`, which reads !Ref, !Sub, !GetAtt, !If ... as {"Ref": ...} and so on).
Every problem names the resource it is about. The rules:

1. Least privilege. No Allow statement in an IAM role, user, group or policy, in a SAM
   function's Policies, or in a bucket, queue, topic, secret or key policy may have an
   action with a wildcard (`*`, `s3:*`, `s3:Get*`), NotAction, Resource `*`, NotResource, or
   (resource policies) Principal `*`. Roles may not attach managed policies (their
   statements are not in the template to check). A SAM function must name its own Role:
   SAM's generated role always attaches AWSLambdaBasicExecutionRole (logs on Resource `*`),
   and only the narrow SAM policy templates in NARROW_SAM_POLICY_TEMPLATES are accepted.
   EXCEPTIONS lists the statements allowed to break this rule, each with its reason.
2. SQS event sources. The queue must have a RedrivePolicy to a DLQ in this template, a
   VisibilityTimeout of at least the function's Timeout plus its batching window (AWS's
   rule: Lambda refuses the event source mapping otherwise,
   https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html; AWS's advice
   of 6x is for throttled retries, and 6x would put a crashed try past a 300-second
   output window), and
   the event source must report partial batch failures (ReportBatchItemFailures). Queues
   must refuse plain HTTP (a QueuePolicy denying aws:SecureTransport false).
3. Rotation. Every rotated secret (WebhookSecret, ProviderApiKeySecret, any secret a
   RotationSchedule targets and any secret in a function's MANAGED_SECRET_IDS) must exist
   and have exactly one RotationSchedule, every 90 days (`rate(90 days)` or
   AutomaticallyAfterDays 90), on a rotation function of this template whose invoke
   permission for secretsmanager.amazonaws.com the schedule DependsOn. A function's
   ROTATION_INTERVAL_DAYS must say 90 too, and the API key grace must exceed the api's
   key cache TTL.
4. Buckets: the full public access block, default encryption, a whole-bucket rule aborting
   incomplete multipart uploads, and a bucket policy denying aws:SecureTransport false.
5. No local-stack-only setting (DOWNLOAD_ALLOW_INSECURE_LOOPBACK, AWS_ENDPOINT_URL) in a
   deployed function's environment.
6. The claim check (bodies too large for one SQS message go to S3 first). Every queue's
   MaximumMessageSize is SQS's 1 MiB (the edge's SQS_MAX_MESSAGE_BYTES default); an IAM
   user (the edge's) may write to S3 only under raw/ and spool/ (rule 9), and only
   s3:PutObject; a bucket an IAM user writes raw/ to
   has an enabled lifecycle rule expiring raw/ after at least 15 days (the longest a message
   that points at such a body can wait: 4 days queued, 14 in the DLQ), never sooner.
7. Observability. Every function has LoggingConfig with LogFormat JSON (Lambda's advanced
   logging controls) and a LogGroup of this template. For each archiver (a function an
   SQS event source feeds): an alarm on each of ALARMED_METRICS (PermanentFailures,
   RejectedMessages) in the archiver's METRICS_NAMESPACE, dimension Function=archiver,
   firing on a single occurrence (Sum >= 1, or > 0), with AlarmActions; its
   MAX_RECEIVE_COUNT and its queue's RedrivePolicy maxReceiveCount are a !Ref to the same
   parameter (so the archiver knows a record's last receive); its role writes the event log
   under index/, and that bucket has an enabled lifecycle rule expiring index/ after the
   EventLogRetentionDays parameter.
8. The output window (issue 22). Each archiver's OUTPUT_RETENTION_SECS is a literal
   (`provider:seconds,…`; W is its shortest retention). Its Timeout and its queue's
   VisibilityTimeout are under W (a try that crashes comes back inside the window), its
   DOWNLOAD_RETRY_BUDGET_MS is under its Timeout, an alarm on the queue's
   ApproximateAgeOfOldestMessage fires below W, and OutputsExpired is alarmed (rule 7's
   ALARMED_METRICS).
9. The spool (issue 24). For every bucket an IAM user (the edge's) may write spool/ to,
   a drainer: a function whose SPOOL_BUCKET is that bucket, whose role may s3:GetObject
   and s3:DeleteObject on its spool/* (and on no other S3 objects) and sqs:SendMessage on
   the queue its QUEUE_URL names; that runs on a Schedule (the sweep, at least every
   60 s: a fifth of the provider's 300-second output window) and on the spool's
   object-created events (an EventBridgeRule on "Object Created" for the bucket with a
   spool/ key prefix, the bucket sending its events to EventBridge; or an S3 event on the
   bucket filtered to spool/); whose SpooledEvents metric has an alarm firing on one
   (as rule 7's); and no enabled lifecycle rule of the bucket expires spool/ (a spooled
   envelope is an event not queued yet).
10. Missed webhooks (issue 23). Every queue a function's CHECK_QUEUE_URL names (the check
   queue) is a queue of this template that an SQS event source with a ScalingConfig
   MaximumConcurrency feeds to a reconciler (that function is not an archiver for rules 7
   and 8; the cap keeps checks from starving the archiver), whose VisibilityTimeout is under
   the output window W (a failed check comes back inside it; rule 2 keeps it at least the
   reconciler's Timeout), whose DLQ has a depth alarm (> 0) and which has an
   ApproximateAgeOfOldestMessage alarm below W, each with AlarmActions. A function that
   sends to it without reading it (the api) may sqs:SendMessage on it, has a
   CHECK_FIRST_DELAY_SECS of at most 60 s (a literal or a parameter's MaxValue), and may
   s3:PutObject on its ARCHIVE_BUCKET's predictions/*/submission.json (the ledger) and on
   nothing else under predictions/. The reconciler: its CHECK_QUEUE_URL is the queue it
   reads; its role has the event source's four SQS actions and sqs:SendMessage on it,
   sqs:SendMessage on its QUEUE_URL, which an archiver reads (a reconciled event takes the
   normal path), secretsmanager:GetSecretValue on its API_KEY_SECRET_ID and no other
   Secrets Manager action or secret; on its ARCHIVE_BUCKET's objects, s3:GetObject only
   under predictions/ and index/ (at least predictions/*/state.json), s3:PutObject only on
   predictions/*/stalled.json and the event log's stalled entry (index/log/*/stalled/*,
   index/id/*, index/prediction/*), which it needs, predictions/*/check.json (its chain
   of checks, which it needs to read and write), and raw/* (claim checks), and no
   other object action; CHECK_MAX_INTERVAL_SECS at most 60 s; MissedWebhooks,
   StalledPredictions and ReconcileUnauthorized (Function=reconciler, its
   METRICS_NAMESPACE) each alarmed as rule 7's (and the sender's CheckScheduleFailures and
   LedgerWriteFailures, Function=api);
   and its sweep: a Schedule whose State follows SWEEP_ENABLED's parameter (!If on a
   condition that it equals "true"), running at least every 60 s when enabled.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

DEFAULT_TEMPLATE = Path(__file__).resolve().parent / "template.yaml"

#: The rotation period every rotated secret must have, in days.
ROTATION_DAYS = 90
#: AWS's rule: an SQS event source's queue visibility timeout >= the function timeout
#: (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html).
VISIBILITY_FACTOR = 1
#: Secrets that must be rotated whatever else the template says.
REQUIRED_ROTATED = ("WebhookSecret", "ProviderApiKeySecret")
#: SAM policy templates narrow enough to use (each grants a fixed list of actions on one
#: named resource).
NARROW_SAM_POLICY_TEMPLATES = {"SQSPollerPolicy", "SQSSendMessagePolicy"}
#: SQS's largest message (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html).
SQS_MAX_MESSAGE_BYTES = 1_048_576
#: Where the edge writes claim-checked bodies (core/src/archive.rs, CLAIM_CHECK_PREFIX).
CLAIM_CHECK_PREFIX = "raw/"
#: Where the edge spools envelopes SQS did not take (edge/src/flow.rs,
#: `spool/{provider}/{body_sha256}`), drained by functions/drainer.
SPOOL_PREFIX = "spool/"
#: The drainer's metric that must have an alarm, and its `Function` dimension.
SPOOL_METRIC = "SpooledEvents"
DRAINER_DIMENSION = ("Function", "drainer")
#: The shortest life of a claim-checked body, in days: longer than a message pointing at it
#: can wait (the DLQ keeps messages 14 days from their first enqueue).
CLAIM_CHECK_MIN_DAYS = 15
#: Settings only the local stack may use.
LOCAL_ONLY_ENV = ("DOWNLOAD_ALLOW_INSECURE_LOOPBACK", "AWS_ENDPOINT_URL")
#: The archiver's metrics that must each have an alarm (functions/archiver/src/metrics.rs).
ALARMED_METRICS = ("PermanentFailures", "RejectedMessages", "OutputsExpired")
#: The `Function` dimension of the archiver's metrics.
ARCHIVER_DIMENSION = ("Function", "archiver")
#: Where the archiver writes its event log (functions/archiver/src/event_log.rs), and the
#: parameter its lifecycle rule must use.
EVENT_LOG_PREFIX = "index/"
EVENT_LOG_RETENTION_PARAMETER = "EventLogRetentionDays"

#: Statements allowed to break rule 1, keyed by (resource logical id, statement Sid), each
#: with the reason it cannot be narrower. Empty: nothing in the template needs one. An
#: example of a truly unavoidable one would be secretsmanager:GetRandomPassword, which
#: IAM only knows on Resource "*" (the rotator generates secrets itself instead).
EXCEPTIONS: dict[tuple[str, str], str] = {}

TYPES_WITH_INLINE_POLICIES = ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group")
RESOURCE_POLICY_KEYS = {
    "AWS::S3::BucketPolicy": "PolicyDocument",
    "AWS::SQS::QueuePolicy": "PolicyDocument",
    "AWS::SNS::TopicPolicy": "PolicyDocument",
    "AWS::SecretsManager::ResourcePolicy": "ResourcePolicy",
    "AWS::KMS::Key": "KeyPolicy",
}
SSE_ALGORITHMS = {"AES256", "aws:kms", "aws:kms:dsse"}


# --------------------------------------------------------------------------------------
# Reading the template
# --------------------------------------------------------------------------------------


def load(path: str | Path) -> dict:
    """The template as plain data, intrinsic functions as {"Ref": ...} dicts."""
    from cfnlint.decode import decode

    template, matches = decode(str(path))
    if matches or not isinstance(template, dict):
        raise SystemExit(f"{path}: cannot be read: " + "; ".join(str(m) for m in matches))
    return template


def as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def branches(value) -> list:
    """Every value `value` can take: both sides of each Fn::If, flattened."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        args = value["Fn::If"]
        if isinstance(args, list) and len(args) == 3:
            return branches(args[1]) + branches(args[2])
    return [value]


def leaves(value) -> list:
    """The items of a list-or-scalar, each Fn::If expanded, AWS::NoValue dropped."""
    out = []
    for item in branches(value):
        for x in as_list(item):
            for y in branches(x):
                if y == {"Ref": "AWS::NoValue"}:
                    continue
                out.extend(as_list(y))
    return out


def target(value) -> str | None:
    """The logical id a Ref / GetAtt points at (None for anything else)."""
    if isinstance(value, dict) and len(value) == 1:
        if "Ref" in value and isinstance(value["Ref"], str):
            return value["Ref"]
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            if isinstance(att, list) and att:
                return att[0]
            if isinstance(att, str):
                return att.split(".", 1)[0]
    return None


def sub_targets(value) -> list[str]:
    """The logical ids a Ref, GetAtt or Fn::Sub mentions (`${X}`, `${X.Attr}`), in either
    branch of an Fn::If (MANAGED_SECRET_IDS depends on the key mode)."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        return [t for b in branches(value) if b is not value for t in sub_targets(b)]
    t = target(value)
    if t:
        return [t]
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        text = sub[0] if isinstance(sub, list) else sub
        if isinstance(text, str):
            names = re.findall(r"\$\{([A-Za-z0-9.:]+)\}", text)
            return [n.split(".", 1)[0] for n in names if not n.startswith("AWS::")]
    return []


def literal_int(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d+", value.strip()):
        return int(value)
    return None


def truthy(value) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def describe(value) -> str:
    return json.dumps(value, default=str) if not isinstance(value, str) else value


class Template:
    def __init__(self, data: dict):
        self.data = data
        self.resources: dict = data.get("Resources") or {}
        self.parameters: dict = data.get("Parameters") or {}
        self.function_globals: dict = (data.get("Globals") or {}).get("Function") or {}

    def of_type(self, *types: str):
        for lid, res in self.resources.items():
            if isinstance(res, dict) and res.get("Type") in types:
                yield lid, res, res.get("Properties") or {}

    def type_of(self, lid: str | None) -> str | None:
        res = self.resources.get(lid) if lid else None
        return res.get("Type") if isinstance(res, dict) else None

    def props(self, lid: str) -> dict:
        return (self.resources.get(lid) or {}).get("Properties") or {}

    def function_setting(self, lid: str, key: str, default=None):
        props = self.props(lid)
        if key in props:
            return props[key]
        if self.type_of(lid) == "AWS::Serverless::Function":
            return self.function_globals.get(key, default)
        return default

    def environment(self, lid: str) -> dict:
        env = ((self.props(lid).get("Environment") or {}).get("Variables")) or {}
        if self.type_of(lid) == "AWS::Serverless::Function":
            glob = ((self.function_globals.get("Environment") or {}).get("Variables")) or {}
            env = {**glob, **env}
        return env

    def functions(self):
        yield from self.of_type("AWS::Serverless::Function", "AWS::Lambda::Function")


# --------------------------------------------------------------------------------------
# Rule 1: least privilege
# --------------------------------------------------------------------------------------


def policy_documents(t: Template):
    """(logical id, where, document, is_resource_policy) for every policy in the template."""
    for lid, _res, props in t.of_type(*TYPES_WITH_INLINE_POLICIES):
        for i, pol in enumerate(as_list(props.get("Policies"))):
            if isinstance(pol, dict):
                name = pol.get("PolicyName", f"#{i}")
                yield lid, f"policy {describe(name)}", pol.get("PolicyDocument"), False
    for lid, _res, props in t.of_type("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        yield lid, "PolicyDocument", props.get("PolicyDocument"), False
    for lid, res, props in t.of_type(*RESOURCE_POLICY_KEYS):
        key = RESOURCE_POLICY_KEYS[res["Type"]]
        yield lid, key, props.get(key), True
    for lid, _res, props in t.of_type("AWS::Serverless::Function"):
        for i, pol in enumerate(as_list(props.get("Policies"))):
            if isinstance(pol, dict) and "Statement" in pol:
                yield lid, f"Policies[{i}]", pol, False


def check_statement(
    lid: str, where: str, index: int, stmt, resource_policy: bool, exceptions: dict
) -> list[str]:
    if not isinstance(stmt, dict) or stmt.get("Effect") != "Allow":
        return []
    sid = stmt.get("Sid")
    if (lid, sid) in exceptions:
        return []
    label = f"{lid}: {where} statement {index}" + (f" ({sid})" if sid else "")
    problems = []
    if "NotAction" in stmt:
        problems.append(f"{label} uses NotAction with Allow (allows everything else); list the actions")
    for action in leaves(stmt.get("Action")):
        if isinstance(action, str) and "*" in action:
            problems.append(f"{label} allows wildcard action {action!r}; list the actions it needs")
    if "NotResource" in stmt:
        problems.append(f"{label} uses NotResource with Allow; name the resources")
    for resource in leaves(stmt.get("Resource")):
        if resource == "*":
            problems.append(f"{label} allows Resource '*'; name the resources")
    if resource_policy:
        for principal in branches(stmt.get("Principal")):
            if principal == "*" or (isinstance(principal, dict) and "*" in leaves(principal.get("AWS"))):
                problems.append(f"{label} allows Principal '*' (anyone); name the principals")
    return problems


def check_least_privilege(t: Template, exceptions: dict) -> list[str]:
    problems = []
    for lid, where, doc, resource_policy in policy_documents(t):
        if not isinstance(doc, dict):
            continue
        for i, stmt in enumerate(as_list(doc.get("Statement"))):
            problems += check_statement(lid, where, i, stmt, resource_policy, exceptions)
    for lid, _res, props in t.of_type(*TYPES_WITH_INLINE_POLICIES):
        for arn in leaves(props.get("ManagedPolicyArns")):
            if (lid, "ManagedPolicyArns") not in exceptions:
                problems.append(
                    f"{lid}: attaches managed policy {describe(arn)}, whose statements cannot "
                    "be checked here; write the statements inline"
                )
    for lid, _res, props in t.of_type("AWS::Serverless::Function"):
        role = t.function_setting(lid, "Role")
        if role is None and (lid, "GeneratedRole") not in exceptions:
            problems.append(
                f"{lid}: has no Role, so SAM generates one with AWSLambdaBasicExecutionRole "
                "(logs actions on Resource '*'); give it its own role"
            )
        for pol in as_list(props.get("Policies")):
            if isinstance(pol, str):
                problems.append(f"{lid}: Policies names managed policy {pol!r}; write the statements")
            elif isinstance(pol, dict) and "Statement" not in pol:
                for name in pol:
                    if name not in NARROW_SAM_POLICY_TEMPLATES:
                        problems.append(
                            f"{lid}: SAM policy template {name!r} is not one of the narrow ones "
                            f"({', '.join(sorted(NARROW_SAM_POLICY_TEMPLATES))}); write the statements"
                        )
    return problems


# --------------------------------------------------------------------------------------
# Rule 2: SQS event sources
# --------------------------------------------------------------------------------------


def event_sources(t: Template):
    """(label, function id, queue value, event properties) for every SQS -> Lambda link."""
    for lid, _res, props in t.of_type("AWS::Serverless::Function"):
        for name, event in (props.get("Events") or {}).items():
            if isinstance(event, dict) and event.get("Type") == "SQS":
                ev = event.get("Properties") or {}
                yield f"{lid}: event {name}", lid, ev.get("Queue"), ev
    for lid, _res, props in t.of_type("AWS::Lambda::EventSourceMapping"):
        source = props.get("EventSourceArn")
        if t.type_of(target(source)) == "AWS::SQS::Queue":
            yield f"{lid}", target(props.get("FunctionName")), source, props


def redrive(props: dict):
    policy = props.get("RedrivePolicy")
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            return None
    return policy if isinstance(policy, dict) else None


def check_event_sources(t: Template) -> list[str]:
    problems = []
    count = 0
    for label, fn, queue_value, ev in event_sources(t):
        count += 1
        qid = target(queue_value)
        if t.type_of(qid) != "AWS::SQS::Queue":
            problems.append(
                f"{label}: its queue {describe(queue_value)} is not a queue of this template "
                "(!GetAtt Queue.Arn); its DLQ and visibility timeout cannot be checked"
            )
            continue
        q = t.props(qid)
        policy = redrive(q)
        if policy is None:
            problems.append(f"{qid}: feeds {fn} but has no RedrivePolicy: a poison message would be retried until it expires; add a DLQ")
        else:
            dlq = target(policy.get("deadLetterTargetArn"))
            if t.type_of(dlq) != "AWS::SQS::Queue":
                problems.append(
                    f"{qid}: RedrivePolicy's deadLetterTargetArn {describe(policy.get('deadLetterTargetArn'))} "
                    "is not a queue of this template"
                )
            receives = parameter_minimum(t, policy.get("maxReceiveCount"))
            if receives is None or receives < 1:
                problems.append(
                    f"{qid}: RedrivePolicy needs a maxReceiveCount of at least 1 (a literal, or a "
                    "parameter whose MinValue is at least 1)"
                )
        visibility = literal_int(q.get("VisibilityTimeout", 30))
        timeout = literal_int(t.function_setting(fn, "Timeout", 3)) if fn else None
        window = literal_int(ev.get("MaximumBatchingWindowInSeconds", 0)) or 0
        if visibility is None or timeout is None:
            problems.append(f"{qid}: VisibilityTimeout and {fn}'s Timeout must be literal numbers to be checked")
        elif visibility < VISIBILITY_FACTOR * timeout + window:
            need = VISIBILITY_FACTOR * timeout + window
            extra = f" + {window} s batching window" if window else ""
            problems.append(
                f"{qid}: VisibilityTimeout {visibility} s is less than {fn}'s "
                f"Timeout ({timeout} s){extra} = {need} s; Lambda refuses such an event source, "
                "and messages would be redelivered mid-invocation"
            )
        if "ReportBatchItemFailures" not in leaves(ev.get("FunctionResponseTypes")):
            problems.append(
                f"{label}: no FunctionResponseTypes [ReportBatchItemFailures]; one failed record "
                "would redeliver the whole batch and the SqsBatchResponse would be ignored"
            )
    return problems


def denies_insecure_transport(doc) -> bool:
    if not isinstance(doc, dict):
        return False
    for stmt in as_list(doc.get("Statement")):
        if isinstance(stmt, dict) and stmt.get("Effect") == "Deny":
            cond = (stmt.get("Condition") or {}).get("Bool") or {}
            if str(cond.get("aws:SecureTransport", "")).lower() == "false":
                return True
    return False


def check_tls_only(t: Template) -> list[str]:
    problems = []
    guarded_queues: set[str] = set()
    for _lid, _res, props in t.of_type("AWS::SQS::QueuePolicy"):
        if denies_insecure_transport(props.get("PolicyDocument")):
            guarded_queues.update(filter(None, (target(q) for q in leaves(props.get("Queues")))))
    for qid, _res, _props in t.of_type("AWS::SQS::Queue"):
        if qid not in guarded_queues:
            problems.append(f"{qid}: no QueuePolicy denies aws:SecureTransport false (plain-HTTP access)")
    guarded_buckets: set[str] = set()
    for _lid, _res, props in t.of_type("AWS::S3::BucketPolicy"):
        if denies_insecure_transport(props.get("PolicyDocument")):
            b = target(props.get("Bucket"))
            if b:
                guarded_buckets.add(b)
    for bid, _res, _props in t.of_type("AWS::S3::Bucket"):
        if bid not in guarded_buckets:
            problems.append(f"{bid}: no BucketPolicy denies aws:SecureTransport false (plain-HTTP access)")
    return problems


# --------------------------------------------------------------------------------------
# Rule 3: rotation
# --------------------------------------------------------------------------------------


def rotation_days(rules) -> int | None:
    """The period of a RotationRules block in days, or None if it is not a plain period."""
    if not isinstance(rules, dict):
        return None
    days = literal_int(rules.get("AutomaticallyAfterDays"))
    expr = rules.get("ScheduleExpression")
    if expr is not None:
        m = re.fullmatch(r"rate\(\s*(\d+)\s+days?\s*\)", expr.strip()) if isinstance(expr, str) else None
        return int(m.group(1)) if m else None
    return days


def check_rotation(t: Template) -> list[str]:
    problems = []
    schedules: dict[str, list[tuple[str, dict, dict]]] = {}
    for lid, res, props in t.of_type("AWS::SecretsManager::RotationSchedule"):
        schedules.setdefault(target(props.get("SecretId")) or "", []).append((lid, res, props))

    rotated: dict[str, str] = {name: "it holds a rotated credential" for name in REQUIRED_ROTATED}
    for sid in schedules:
        rotated.setdefault(sid, "a RotationSchedule targets it")
    rotators: set[str] = set()
    for fid, _res, _props in t.functions():
        env = t.environment(fid)
        if "MANAGED_SECRET_IDS" in env:
            rotators.add(fid)
            for sid in sub_targets(env["MANAGED_SECRET_IDS"]):
                rotated.setdefault(sid, f"{fid}'s MANAGED_SECRET_IDS lists it")
        if "ROTATION_INTERVAL_DAYS" in env and literal_int(env["ROTATION_INTERVAL_DAYS"]) != ROTATION_DAYS:
            problems.append(
                f"{fid}: ROTATION_INTERVAL_DAYS is {describe(env['ROTATION_INTERVAL_DAYS'])}, "
                f"not {ROTATION_DAYS} like the RotationSchedules"
            )

    for sid, why in sorted(rotated.items()):
        if t.type_of(sid) != "AWS::SecretsManager::Secret":
            problems.append(f"{sid}: expected a rotated AWS::SecretsManager::Secret ({why}), but the template has none")
            continue
        found = schedules.get(sid, [])
        if not found:
            problems.append(f"{sid}: rotated ({why}) but no AWS::SecretsManager::RotationSchedule targets it")
            continue
        if len(found) > 1:
            names = ", ".join(lid for lid, _r, _p in found)
            problems.append(f"{sid}: {len(found)} RotationSchedules ({names}); a secret has one")
        for lid, res, props in found:
            if "HostedRotationLambda" in props:
                problems.append(f"{lid}: uses a HostedRotationLambda; {sid} is rotated by hookvault's rotator")
            rules = props.get("RotationRules")
            days = rotation_days(rules)
            if days != ROTATION_DAYS:
                shown = describe(rules) if rules is not None else "no RotationRules"
                problems.append(f"{lid}: rotates {sid} on {shown}, not every {ROTATION_DAYS} days")
            fn = target(props.get("RotationLambdaARN"))
            if t.type_of(fn) not in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
                problems.append(f"{lid}: RotationLambdaARN {describe(props.get('RotationLambdaARN'))} is not a function of this template")
                continue
            if rotators and fn not in rotators:
                problems.append(f"{lid}: rotates {sid} with {fn}, which has no MANAGED_SECRET_IDS")
            elif fn in rotators and sid not in sub_targets(t.environment(fn)["MANAGED_SECRET_IDS"]):
                problems.append(f"{lid}: {fn}'s MANAGED_SECRET_IDS does not list {sid}; the daily run would not look after it")
            # A permission pinned to another secret (SourceArn) does not let this one in.
            permissions = {
                pid
                for pid, _r, p in t.of_type("AWS::Lambda::Permission")
                if p.get("Principal") == "secretsmanager.amazonaws.com"
                and target(p.get("FunctionName")) == fn
                and ("SourceArn" not in p or target(p.get("SourceArn")) == sid)
            }
            if not permissions:
                problems.append(
                    f"{lid}: no AWS::Lambda::Permission lets secretsmanager.amazonaws.com invoke {fn} for {sid}"
                )
            elif not permissions & set(as_list(res.get("DependsOn"))):
                problems.append(
                    f"{lid}: does not DependsOn the permission letting Secrets Manager invoke {fn} "
                    f"({', '.join(sorted(permissions))}); creating it can race the permission and fail"
                )
    problems += check_grace_exceeds_cache(t)
    return problems


def parameter_bound(t: Template, value, bound: str) -> int | None:
    """A literal, or the `bound` (MinValue, MaxValue) of the parameter it refers to."""
    n = literal_int(value)
    if n is not None:
        return n
    p = target(value)
    if p in t.parameters:
        return literal_int(t.parameters[p].get(bound))
    return None


def parameter_minimum(t: Template, value) -> int | None:
    """A literal, or the MinValue of the parameter it refers to."""
    return parameter_bound(t, value, "MinValue")


def parameter_maximum(t: Template, value) -> int | None:
    """A literal, or the MaxValue of the parameter it refers to (None: unbounded)."""
    return parameter_bound(t, value, "MaxValue")


def check_grace_exceeds_cache(t: Template) -> list[str]:
    ttls = []
    graces = []
    for fid, _res, _props in t.functions():
        env = t.environment(fid)
        if "API_KEY_CACHE_TTL_SECS" in env:
            ttls.append((fid, literal_int(env["API_KEY_CACHE_TTL_SECS"])))
        if "API_KEY_GRACE_SECS" in env:
            graces.append((fid, "API_KEY_GRACE_SECS", env["API_KEY_GRACE_SECS"], parameter_minimum(t, env["API_KEY_GRACE_SECS"])))
    for fid, _res, _props in t.functions():
        env = t.environment(fid)
        # In general key mode the old API key is also a webhook signing key: predictions
        # are created under it for one cache TTL after finishSecret, so its webhook grace
        # must exceed the TTL too.
        if "WEBHOOK_GRACE_SECS" in env:
            graces.append((fid, "WEBHOOK_GRACE_SECS", env["WEBHOOK_GRACE_SECS"], parameter_minimum(t, env["WEBHOOK_GRACE_SECS"])))
    problems = []
    for gid, name, raw, grace in graces:
        for tid, ttl in ttls:
            if ttl is None or grace is None or grace <= ttl:
                why = (
                    "an old key is revoked while still cached"
                    if name == "API_KEY_GRACE_SECS"
                    else "in general key mode the old key leaves the edge's ring while predictions are still created under it"
                )
                problems.append(
                    f"{gid}: {name} ({describe(raw)}, at least {grace}) must exceed {tid}'s "
                    f"API_KEY_CACHE_TTL_SECS ({ttl}), or {why}"
                )
    return problems


# --------------------------------------------------------------------------------------
# Rule 4: buckets; rule 5: local-only settings
# --------------------------------------------------------------------------------------


def check_buckets(t: Template) -> list[str]:
    problems = []
    for bid, _res, props in t.of_type("AWS::S3::Bucket"):
        block = props.get("PublicAccessBlockConfiguration") or {}
        missing = [
            k
            for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
            if not truthy(block.get(k))
        ]
        if missing:
            problems.append(f"{bid}: public access block incomplete: {', '.join(missing)} not true")
        rules = ((props.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration")) or []
        algorithms = [
            ((r.get("ServerSideEncryptionByDefault") or {}).get("SSEAlgorithm")) for r in as_list(rules) if isinstance(r, dict)
        ]
        if not any(a in SSE_ALGORITHMS for a in algorithms):
            problems.append(f"{bid}: no default encryption (BucketEncryption with an SSEAlgorithm)")
        aborts = [
            r
            for r in as_list((props.get("LifecycleConfiguration") or {}).get("Rules"))
            if isinstance(r, dict)
            and r.get("Status") == "Enabled"
            and literal_int((r.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation")) is not None
            and not r.get("Prefix")
            and not r.get("Filter")
        ]
        if not aborts:
            problems.append(
                f"{bid}: no enabled whole-bucket lifecycle rule with AbortIncompleteMultipartUpload; "
                "parts of uploads that were never aborted would be kept (and billed) forever"
            )
    return problems


def s3_object_resources(stmt) -> list[str]:
    """The Sub strings of an Allow statement's S3 object resources (`…/prefix/*`)."""
    out = []
    for r in leaves(stmt.get("Resource")):
        if isinstance(r, dict) and "Fn::Sub" in r:
            sub = r["Fn::Sub"]
            out.append(sub if isinstance(sub, str) else str(sub))
        elif isinstance(r, str):
            out.append(r)
    return out


def check_claim_check(t: Template) -> list[str]:
    problems = []
    for qid, _res, props in t.of_type("AWS::SQS::Queue"):
        size = literal_int(props.get("MaximumMessageSize"))
        if size != SQS_MAX_MESSAGE_BYTES:
            problems.append(
                f"{qid}: MaximumMessageSize is {describe(props.get('MaximumMessageSize'))}, not "
                f"{SQS_MAX_MESSAGE_BYTES} (SQS's largest, the edge's SQS_MAX_MESSAGE_BYTES): "
                "the edge would send messages the queue refuses"
            )
    writes_raw = False
    for uid, _res, props in t.of_type("AWS::IAM::User"):
        for pol in as_list(props.get("Policies")):
            doc = pol.get("PolicyDocument") if isinstance(pol, dict) else None
            for stmt in as_list((doc or {}).get("Statement")):
                if not isinstance(stmt, dict) or stmt.get("Effect") != "Allow":
                    continue
                if not any(isinstance(a, str) and a.startswith("s3:") for a in leaves(stmt.get("Action"))):
                    continue
                others = [
                    a for a in leaves(stmt.get("Action")) if a != "s3:PutObject" and str(a).startswith("s3:")
                ]
                if others:
                    problems.append(
                        f"{uid}: may {', '.join(map(str, others))}; the edge's user only writes "
                        "(s3:PutObject) claim checks and spooled envelopes"
                    )
                for res in s3_object_resources(stmt):
                    if res.endswith("/" + CLAIM_CHECK_PREFIX + "*"):
                        writes_raw = True
                    elif not res.endswith("/" + SPOOL_PREFIX + "*"):
                        problems.append(
                            f"{uid}: may use S3 on {res!r}; the edge's user writes only claim "
                            f"checks, under {CLAIM_CHECK_PREFIX}, and spooled envelopes, under "
                            f"{SPOOL_PREFIX}"
                        )
    if writes_raw:
        for bid, _res, props in t.of_type("AWS::S3::Bucket"):
            expiring = [
                r
                for r in as_list((props.get("LifecycleConfiguration") or {}).get("Rules"))
                if isinstance(r, dict)
                and r.get("Status") == "Enabled"
                and (r.get("Prefix") or ((r.get("Filter") or {}).get("Prefix"))) == CLAIM_CHECK_PREFIX
                and r.get("ExpirationInDays") is not None
            ]
            if not expiring:
                problems.append(
                    f"{bid}: no enabled lifecycle rule expiring {CLAIM_CHECK_PREFIX}; claim-checked "
                    "bodies would be kept (and billed) forever"
                )
            for r in expiring:
                days = parameter_minimum(t, r.get("ExpirationInDays"))
                if days is None or days < CLAIM_CHECK_MIN_DAYS:
                    problems.append(
                        f"{bid}: lifecycle rule {r.get('Id')!r} may expire {CLAIM_CHECK_PREFIX} after "
                        f"{describe(days)} days, sooner than {CLAIM_CHECK_MIN_DAYS}: a message in the "
                        "DLQ could outlive the body it points at"
                    )
    return problems


def check_local_only(t: Template) -> list[str]:
    problems = []
    for fid, _res, _props in t.functions():
        for name in LOCAL_ONLY_ENV:
            if name in t.environment(fid):
                problems.append(f"{fid}: sets {name}, a local-stack-only setting")
    return problems


# --------------------------------------------------------------------------------------
# Rule 7: observability
# --------------------------------------------------------------------------------------


def archivers(t: Template) -> list[tuple[str, str]]:
    """(function id, queue id) for every function an SQS event source of this template feeds,
    but for the check queues' (rule 10: a reconciler reads checks, not events)."""
    out = []
    checks = check_queues(t)
    for _label, fn, queue_value, _ev in event_sources(t):
        qid = target(queue_value)
        if fn and t.type_of(qid) == "AWS::SQS::Queue" and qid not in checks and (fn, qid) not in out:
            out.append((fn, qid))
    return out


def check_queues(t: Template) -> set[str]:
    """The logical ids every function's CHECK_QUEUE_URL names (issue 23's check queues)."""
    out = set()
    for fid, _res, _props in t.functions():
        q = target(t.environment(fid).get("CHECK_QUEUE_URL"))
        if q:
            out.add(q)
    return out


def check_logging(t: Template) -> list[str]:
    problems = []
    for fid, _res, _props in t.functions():
        config = t.function_setting(fid, "LoggingConfig")
        if not isinstance(config, dict):
            problems.append(
                f"{fid}: no LoggingConfig; set LogFormat JSON (Lambda's advanced logging controls: "
                "JSON lines with requestId, AWS_LAMBDA_LOG_LEVEL) and its LogGroup"
            )
            continue
        if config.get("LogFormat") != "JSON":
            problems.append(
                f"{fid}: LoggingConfig LogFormat is {describe(config.get('LogFormat'))}, not JSON; "
                "hookvault's log lines and queries expect JSON"
            )
        group = target(config.get("LogGroup"))
        if t.type_of(group) != "AWS::Logs::LogGroup":
            problems.append(
                f"{fid}: LoggingConfig LogGroup {describe(config.get('LogGroup'))} is not a log group "
                "of this template (its retention and its role's Logs statement are there)"
            )
        # The EMF metric lines have no level: Lambda takes them as INFO, so an application
        # log level above INFO drops them and the alarms on them never fire.
        level = config.get("ApplicationLogLevel")
        allowed = {"TRACE", "DEBUG", "INFO"}
        param = t.parameters.get(target(level) or "", {}) if isinstance(level, dict) else None
        values = set(as_list(param.get("AllowedValues"))) if param is not None else {level}
        if param is not None and not param.get("AllowedValues"):
            values = {"(any)"}
        if level is not None and not values <= allowed:
            problems.append(
                f"{fid}: LoggingConfig ApplicationLogLevel may be {', '.join(sorted(values - allowed))}: "
                "above INFO, Lambda drops the EMF metric lines (they carry no level), and the "
                "PermanentFailures and RejectedMessages alarms go silent"
            )
    return problems


def has_actions(value) -> bool:
    """True when some branch of an alarm's AlarmActions names at least one action."""
    return any(leaves(b) for b in branches(value))


def dimensions_of(props: dict) -> set[tuple[str, str]]:
    out = set()
    for d in as_list(props.get("Dimensions")):
        if isinstance(d, dict) and isinstance(d.get("Name"), str) and isinstance(d.get("Value"), str):
            out.add((d["Name"], d["Value"]))
    return out


def fires_on_one(props: dict) -> bool:
    """Sum over the period, and a single occurrence breaches (>= 1, or > 0)."""
    threshold = props.get("Threshold")
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        return False
    op = props.get("ComparisonOperator")
    return props.get("Statistic") == "Sum" and (
        (op == "GreaterThanOrEqualToThreshold" and 0 < threshold <= 1)
        or (op == "GreaterThanThreshold" and 0 <= threshold < 1)
    )


def check_alarms(t: Template) -> list[str]:
    problems = []
    alarms = list(t.of_type("AWS::CloudWatch::Alarm"))
    for fid, _qid in archivers(t):
        namespace = t.environment(fid).get("METRICS_NAMESPACE")
        if namespace is None:
            problems.append(f"{fid}: no METRICS_NAMESPACE; its metrics would not be where the alarms look")
            continue
        for metric in ALARMED_METRICS:
            candidates = [(aid, props) for aid, _res, props in alarms if props.get("MetricName") == metric]
            if not candidates:
                problems.append(f"{fid}: no AWS::CloudWatch::Alarm watches its {metric} metric")
                continue
            for aid, props in candidates:
                if props.get("Namespace") != namespace:
                    problems.append(
                        f"{aid}: watches {metric} in namespace {describe(props.get('Namespace'))}, not "
                        f"{fid}'s METRICS_NAMESPACE {describe(namespace)}"
                    )
                if ARCHIVER_DIMENSION not in dimensions_of(props):
                    problems.append(
                        f"{aid}: watches {metric} without the dimension "
                        f"{ARCHIVER_DIMENSION[0]}={ARCHIVER_DIMENSION[1]}, which every archiver metric has"
                    )
                if not fires_on_one(props):
                    problems.append(
                        f"{aid}: must fire on a single {metric} (Statistic Sum, "
                        "GreaterThanOrEqualToThreshold 1)"
                    )
                if not has_actions(props.get("AlarmActions")):
                    problems.append(f"{aid}: has no AlarmActions; nobody would be told")
    return problems


def check_max_receive_count(t: Template) -> list[str]:
    problems = []
    for fid, qid in archivers(t):
        policy = redrive(t.props(qid))
        if policy is None:
            continue  # rule 2 reports it
        queue_side = policy.get("maxReceiveCount")
        env = t.environment(fid)
        if "MAX_RECEIVE_COUNT" not in env:
            problems.append(
                f"{fid}: no MAX_RECEIVE_COUNT; it must know {qid}'s maxReceiveCount to tell a "
                "record's last receive"
            )
            continue
        function_side = env["MAX_RECEIVE_COUNT"]
        param = queue_side.get("Ref") if isinstance(queue_side, dict) else None
        if param not in t.parameters or queue_side != {"Ref": param} or function_side != queue_side:
            problems.append(
                f"{fid}: MAX_RECEIVE_COUNT ({describe(function_side)}) and {qid}'s RedrivePolicy "
                f"maxReceiveCount ({describe(queue_side)}) must be a !Ref to the same parameter"
            )
    return problems


def rule_prefix(rule: dict):
    return rule.get("Prefix") or ((rule.get("Filter") or {}).get("Prefix"))


def check_event_log_retention(t: Template) -> list[str]:
    problems = []
    for fid, _qid in archivers(t):
        role = target(t.function_setting(fid, "Role"))
        if t.type_of(role) != "AWS::IAM::Role":
            continue  # rule 1 reports a function without its own role
        buckets: set[str] = set()
        for pol in as_list(t.props(role).get("Policies")):
            doc = pol.get("PolicyDocument") if isinstance(pol, dict) else None
            for stmt in as_list((doc or {}).get("Statement")):
                if not isinstance(stmt, dict) or stmt.get("Effect") != "Allow":
                    continue
                if "s3:PutObject" not in leaves(stmt.get("Action")):
                    continue
                for r in leaves(stmt.get("Resource")):
                    if isinstance(r, dict) and "Fn::Sub" in r:
                        sub = r["Fn::Sub"]
                        if isinstance(sub, str) and sub.endswith("/" + EVENT_LOG_PREFIX + "*"):
                            buckets.update(b for b in sub_targets(r) if t.type_of(b) == "AWS::S3::Bucket")
        if not buckets:
            problems.append(
                f"{role}: no statement lets {fid} PutObject under {EVENT_LOG_PREFIX} of a bucket of "
                "this template (its event log)"
            )
        for bid in sorted(buckets):
            rules = [
                r
                for r in as_list((t.props(bid).get("LifecycleConfiguration") or {}).get("Rules"))
                if isinstance(r, dict) and r.get("Status") == "Enabled" and rule_prefix(r) == EVENT_LOG_PREFIX
            ]
            if not rules:
                problems.append(
                    f"{bid}: no enabled lifecycle rule on {EVENT_LOG_PREFIX}; {fid}'s event log would "
                    "be kept (and billed) forever"
                )
            for r in rules:
                if r.get("ExpirationInDays") != {"Ref": EVENT_LOG_RETENTION_PARAMETER}:
                    problems.append(
                        f"{bid}: lifecycle rule {r.get('Id')!r} expires {EVENT_LOG_PREFIX} after "
                        f"{describe(r.get('ExpirationInDays'))}, not the {EVENT_LOG_RETENTION_PARAMETER} "
                        "parameter"
                    )
            if EVENT_LOG_RETENTION_PARAMETER not in t.parameters:
                problems.append(f"no {EVENT_LOG_RETENTION_PARAMETER} parameter for {bid}'s event log rule")
    return problems


# --------------------------------------------------------------------------------------


# The slowest sweep of the spool allowed: a fifth of Skytells' 300-second output window.
MAX_SWEEP_SECS = 60


def rate_seconds(expr) -> int | None:
    """The period of an EventBridge `rate(N unit)` expression, in seconds; None for anything
    else (a cron expression, a non-literal)."""
    if not isinstance(expr, str) or not expr.startswith("rate(") or not expr.endswith(")"):
        return None
    n, _, unit = expr[5:-1].strip().partition(" ")
    per = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
    if not n.isdigit() or unit.strip() not in per:
        return None
    return int(n) * per[unit.strip()]


def retention_window(value) -> int | None:
    """The shortest retention of an OUTPUT_RETENTION_SECS list (`skytells:300,*:3600`), in
    seconds; None when it is not a literal list of name:seconds entries."""
    if not isinstance(value, str):
        return None
    secs = []
    for entry in (e.strip() for e in value.split(",")):
        if not entry:
            continue
        name, sep, n = entry.partition(":")
        if not sep or not name.strip() or not n.strip().isdigit() or int(n) == 0:
            return None
        secs.append(int(n))
    return min(secs) if secs else None


def check_output_window(t: Template) -> list[str]:
    problems = []
    alarms = list(t.of_type("AWS::CloudWatch::Alarm"))
    for fid, qid in archivers(t):
        env = t.environment(fid)
        w = retention_window(env.get("OUTPUT_RETENTION_SECS"))
        if w is None:
            problems.append(
                f"{fid}: OUTPUT_RETENTION_SECS must be a literal provider=seconds list (the "
                "output window every retry, timeout and alarm is derived from)"
            )
            continue
        timeout = literal_int(t.function_setting(fid, "Timeout", 3))
        visibility = literal_int(t.props(qid).get("VisibilityTimeout", 30))
        if timeout is not None and timeout >= w:
            problems.append(f"{fid}: Timeout {timeout} s is not under the {w} s output window")
        if visibility is not None and visibility >= w:
            problems.append(
                f"{qid}: VisibilityTimeout {visibility} s is not under the {w} s output window; a "
                "crashed try would come back after the outputs are gone"
            )
        budget = literal_int(env.get("DOWNLOAD_RETRY_BUDGET_MS"))
        if budget is None or timeout is None or budget >= timeout * 1000:
            problems.append(
                f"{fid}: DOWNLOAD_RETRY_BUDGET_MS ({describe(env.get('DOWNLOAD_RETRY_BUDGET_MS'))}) "
                f"must be a literal under its Timeout ({timeout} s)"
            )
        ages = [
            props
            for _aid, _res, props in alarms
            if props.get("MetricName") == "ApproximateAgeOfOldestMessage"
            and props.get("Namespace") == "AWS/SQS"
            and any(
                isinstance(d, dict) and d.get("Value") == {"Fn::GetAtt": [qid, "QueueName"]}
                for d in as_list(props.get("Dimensions"))
            )
        ]
        thresholds = [literal_int(p.get("Threshold")) for p in ages]
        if not any(x is not None and x < w for x in thresholds):
            problems.append(
                f"{qid}: no ApproximateAgeOfOldestMessage alarm below the {w} s output window; "
                "nobody would hear the archiver falling behind before outputs are purged"
            )
    return problems


# --------------------------------------------------------------------------------------
# Rule 9: the spool
# --------------------------------------------------------------------------------------


def allow_statements(t: Template, role: str | None):
    """Every Allow statement of `role`'s inline policies."""
    if t.type_of(role) != "AWS::IAM::Role":
        return
    for pol in as_list(t.props(role).get("Policies")):
        doc = pol.get("PolicyDocument") if isinstance(pol, dict) else None
        for stmt in as_list((doc or {}).get("Statement")):
            if isinstance(stmt, dict) and stmt.get("Effect") == "Allow":
                yield stmt


def spool_buckets(t: Template) -> list[tuple[str, str]]:
    """(user id, bucket id) for every IAM user allowed to write spool/ of a bucket."""
    out = []
    for uid, _res, props in t.of_type("AWS::IAM::User"):
        for pol in as_list(props.get("Policies")):
            doc = pol.get("PolicyDocument") if isinstance(pol, dict) else None
            for stmt in as_list((doc or {}).get("Statement")):
                if not isinstance(stmt, dict) or stmt.get("Effect") != "Allow":
                    continue
                if "s3:PutObject" not in leaves(stmt.get("Action")):
                    continue
                for r in leaves(stmt.get("Resource")):
                    sub = r.get("Fn::Sub") if isinstance(r, dict) else None
                    if isinstance(sub, str) and sub.endswith("/" + SPOOL_PREFIX + "*"):
                        for b in sub_targets(r):
                            if t.type_of(b) == "AWS::S3::Bucket" and (uid, b) not in out:
                                out.append((uid, b))
    return out


def role_grants(t: Template, role: str | None, action: str, bucket: str, suffix: str) -> bool:
    """True when `role` allows `action` on `${bucket.Arn}{suffix}`."""
    for stmt in allow_statements(t, role):
        if action not in leaves(stmt.get("Action")):
            continue
        for r in leaves(stmt.get("Resource")):
            sub = r.get("Fn::Sub") if isinstance(r, dict) else None
            if isinstance(sub, str) and sub == "${" + bucket + ".Arn}" + suffix:
                return True
    return False


def drains_on_events(t: Template, fid: str, bucket: str) -> bool:
    """True when `fid` runs on the object-created events of `bucket`'s spool/."""
    events = (t.props(fid).get("Events") or {}).values()
    for ev in events:
        if not isinstance(ev, dict):
            continue
        props = ev.get("Properties") or {}
        if ev.get("Type") == "EventBridgeRule":
            p = props.get("Pattern") or {}
            detail = p.get("detail") or {}
            names = [target(n) for n in leaves((detail.get("bucket") or {}).get("name"))]
            keys = leaves((detail.get("object") or {}).get("key"))
            config = (t.props(bucket).get("NotificationConfiguration") or {}).get("EventBridgeConfiguration") or {}
            if (
                "aws.s3" in leaves(p.get("source"))
                and "Object Created" in leaves(p.get("detail-type"))
                and bucket in names
                and {"prefix": SPOOL_PREFIX} in keys
                and truthy(config.get("EventBridgeEnabled"))
            ):
                return True
        if ev.get("Type") == "S3" and target(props.get("Bucket")) == bucket:
            rules = (((props.get("Filter") or {}).get("S3Key") or {}).get("Rules")) or []
            if any(
                isinstance(r, dict) and str(r.get("Name")).lower() == "prefix" and r.get("Value") == SPOOL_PREFIX
                for r in as_list(rules)
            ):
                return True
    return False


def check_spool(t: Template) -> list[str]:
    problems = []
    for uid, bid in spool_buckets(t):
        for r in as_list((t.props(bid).get("LifecycleConfiguration") or {}).get("Rules")):
            if not isinstance(r, dict) or r.get("Status") != "Enabled":
                continue
            prefix = rule_prefix(r) or ""
            if SPOOL_PREFIX.startswith(prefix) and ("ExpirationInDays" in r or "ExpirationDate" in r):
                problems.append(
                    f"{bid}: lifecycle rule {r.get('Id')!r} expires {SPOOL_PREFIX}: a spooled envelope "
                    "is an authentic event not queued yet, and would be lost"
                )
        drainers = [
            fid for fid, _res, _props in t.functions() if target(t.environment(fid).get("SPOOL_BUCKET")) == bid
        ]
        if not drainers:
            problems.append(
                f"{bid}: {uid} spools envelopes to its {SPOOL_PREFIX}, but no function has "
                "SPOOL_BUCKET set to it: nothing would ever queue them (functions/drainer)"
            )
        for fid in drainers:
            role = target(t.function_setting(fid, "Role"))
            env = t.environment(fid)
            for action in ("s3:GetObject", "s3:DeleteObject"):
                if not role_grants(t, role, action, bid, "/" + SPOOL_PREFIX + "*"):
                    problems.append(f"{role}: {fid} needs {action} on {bid}'s {SPOOL_PREFIX}*")
            for stmt in allow_statements(t, role):
                if not any(str(a).startswith("s3:") for a in leaves(stmt.get("Action"))):
                    continue
                for res in s3_object_resources(stmt):
                    if "/" in res and not res.endswith("/" + SPOOL_PREFIX + "*"):
                        problems.append(f"{role}: the drainer may use S3 on {res!r}; it needs only {SPOOL_PREFIX}")
            queue = target(env.get("QUEUE_URL"))
            if t.type_of(queue) != "AWS::SQS::Queue":
                problems.append(f"{fid}: QUEUE_URL {describe(env.get('QUEUE_URL'))} is not a queue of this template")
            elif not any(
                "sqs:SendMessage" in leaves(s.get("Action")) and queue in [target(r) for r in leaves(s.get("Resource"))]
                for s in allow_statements(t, role)
            ):
                problems.append(f"{role}: {fid} needs sqs:SendMessage on {queue}")
            events = (t.props(fid).get("Events") or {}).values()
            sweeps = [e for e in events if isinstance(e, dict) and e.get("Type") == "Schedule"]
            if not sweeps:
                problems.append(f"{fid}: no Schedule event; nothing would sweep {SPOOL_PREFIX} after a lost event")
            for e in sweeps:
                period = rate_seconds((e.get("Properties") or {}).get("Schedule"))
                if period is None or period > MAX_SWEEP_SECS:
                    problems.append(
                        f"{fid}: the sweep must run at least every {MAX_SWEEP_SECS} s (a rate() "
                        "expression): a spooled event whose object-created event was lost must "
                        "reach the queue well inside the provider's 300-second output window"
                    )
            if not drains_on_events(t, fid, bid):
                problems.append(
                    f"{fid}: not run on {bid}'s {SPOOL_PREFIX} object-created events (an EventBridgeRule "
                    f"on aws.s3 Object Created, bucket {bid}, key prefix {SPOOL_PREFIX}, with the bucket's "
                    "EventBridgeEnabled; or an S3 event filtered to the prefix)"
                )
            problems += metric_alarm_problems(
                t, fid, SPOOL_METRIC, DRAINER_DIMENSION,
                "a spooled event means SQS refused, and nobody would hear of it",
            )
    return problems


def metric_alarm_problems(t: Template, fid: str, metric: str, dimension: tuple[str, str], why: str) -> list[str]:
    """`fid`'s EMF metric `metric` (its METRICS_NAMESPACE, `dimension`) must have an alarm
    that fires on one occurrence and tells someone (rules 9 and 10)."""
    problems = []
    namespace = t.environment(fid).get("METRICS_NAMESPACE")
    watching = [
        (aid, props)
        for aid, _res, props in t.of_type("AWS::CloudWatch::Alarm")
        if props.get("MetricName") == metric
        and props.get("Namespace") == namespace
        and dimension in dimensions_of(props)
    ]
    if namespace is None or not watching:
        problems.append(
            f"{fid}: no AWS::CloudWatch::Alarm watches its {metric} (namespace its "
            f"METRICS_NAMESPACE, {dimension[0]}={dimension[1]}): {why}"
        )
    for aid, props in watching:
        if not fires_on_one(props):
            problems.append(f"{aid}: must fire on a single {metric} (Statistic Sum, GreaterThanOrEqualToThreshold 1)")
        if not has_actions(props.get("AlarmActions")):
            problems.append(f"{aid}: has no AlarmActions; nobody would be told")
    return problems


# --------------------------------------------------------------------------------------
# Rule 10: missed webhooks (issue 23)
# --------------------------------------------------------------------------------------

#: The reconciler's metrics that must each have an alarm, and their `Function` dimension.
RECONCILER_METRICS = ("MissedWebhooks", "StalledPredictions", "ReconcileUnauthorized")
RECONCILER_DIMENSION = ("Function", "reconciler")
#: A check sender's (the api's) metrics that must each have an alarm: a prediction whose
#: ledger record or first check failed is followed by nobody (functions/api/src/ledger.rs).
SENDER_METRICS = ("CheckScheduleFailures", "LedgerWriteFailures")
SENDER_DIMENSION = ("Function", "api")
#: What Lambda's SQS event source mapping calls with the function's role.
POLL_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes")
#: Where a reconciler may read (the ledger, the state, the stalled marker; the event log).
RECONCILER_READ_PREFIXES = ("predictions/", "index/")
#: The state.json it must be able to read, and the only objects it may write: the stalled
#: marker, its event log entry (index/log/… under the outcome `stalled`, and the same line
#: by event id and by prediction) and claim-checked bodies (functions/reconciler/src/aws.rs;
#: core/src/archive.rs).
STATE_OBJECT = "predictions/*/state.json"
STALLED_OBJECT = "predictions/*/stalled.json"
#: The prediction's chain of checks, read and written conditionally (one chain each).
CHAIN_OBJECT = "predictions/*/check.json"
STALLED_LOG = (EVENT_LOG_PREFIX + "log/*/stalled/*", EVENT_LOG_PREFIX + "id/*", EVENT_LOG_PREFIX + "prediction/*")
RECONCILER_WRITES = (STALLED_OBJECT, CHAIN_OBJECT, *STALLED_LOG, CLAIM_CHECK_PREFIX + "*")
#: The ledger, the only object under predictions/ a check's sender (the api) may write.
LEDGER_OBJECT = "predictions/*/submission.json"
#: The longest delay before a check (the first, and between two): a fifth of Skytells'
#: 300-second output window, as the drainer's sweep (MAX_SWEEP_SECS).
MAX_CHECK_INTERVAL_SECS = 60
#: The window the checks are held to when no archiver states one (Skytells').
DEFAULT_WINDOW_SECS = 300


def grants_on(t: Template, role: str | None, action: str, resource: str) -> bool:
    """True when `role` allows `action` on the logical id `resource` (a Ref or GetAtt)."""
    return any(
        action in leaves(s.get("Action")) and resource in [target(r) for r in leaves(s.get("Resource"))]
        for s in allow_statements(t, role)
    )


def object_grants(t: Template, role: str | None, bucket: str) -> dict[str, set[str]]:
    """{s3 action: the object patterns (`predictions/*`) `role` allows it on in `bucket`};
    a resource on another bucket or not written as `${Bucket.Arn}/…` counts as `?{text}`."""
    out: dict[str, set[str]] = {}
    head = "${" + bucket + ".Arn}/"
    for stmt in allow_statements(t, role):
        actions = [a for a in leaves(stmt.get("Action")) if isinstance(a, str) and a.startswith("s3:")]
        if not actions:
            continue
        for res in s3_object_resources(stmt):
            if "/" not in res:
                continue  # the bucket itself (ListBucket)
            pattern = res[len(head):] if res.startswith(head) else "?" + res
            for a in actions:
                out.setdefault(a, set()).add(pattern)
    return out


def covers(pattern: str, wanted: str) -> bool:
    """True when the IAM pattern `pattern` (a `*` matches anything) matches every key of
    `wanted` (itself a pattern)."""
    rx = "^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$"
    return re.match(rx, wanted) is not None


def alarms_on_queue(t: Template, qid: str, metric: str) -> list[tuple[str, dict]]:
    return [
        (aid, props)
        for aid, _res, props in t.of_type("AWS::CloudWatch::Alarm")
        if props.get("Namespace") == "AWS/SQS"
        and props.get("MetricName") == metric
        and any(
            isinstance(d, dict) and d.get("Value") == {"Fn::GetAtt": [qid, "QueueName"]}
            for d in as_list(props.get("Dimensions"))
        )
    ]


def sweep_follows(t: Template, state, parameter: str) -> bool:
    """True when a Schedule's State is !If [C, ENABLED, DISABLED] with C = the parameter
    equal to "true"."""
    if not (isinstance(state, dict) and set(state) == {"Fn::If"}):
        return False
    args = state["Fn::If"]
    if not (isinstance(args, list) and len(args) == 3 and args[1:] == ["ENABLED", "DISABLED"]):
        return False
    cond = (t.data.get("Conditions") or {}).get(args[0])
    equals = cond.get("Fn::Equals") if isinstance(cond, dict) else None
    return isinstance(equals, list) and sorted(map(json.dumps, equals)) == sorted(
        map(json.dumps, [{"Ref": parameter}, "true"])
    )


def delay_problems(t: Template, fid: str, name: str, why: str) -> list[str]:
    """`fid`'s setting `name`, a delay before a check, is at most MAX_CHECK_INTERVAL_SECS."""
    value = t.environment(fid).get(name)
    delay = parameter_maximum(t, value)
    if delay is None or delay > MAX_CHECK_INTERVAL_SECS:
        return [
            f"{fid}: {name} ({describe(value)}) must be at most {MAX_CHECK_INTERVAL_SECS} (a "
            f"literal, or a parameter whose MaxValue is): {why}"
        ]
    return []


def check_sweep(t: Template, fid: str) -> list[str]:
    problems = []
    env = t.environment(fid)
    flag = env.get("SWEEP_ENABLED")
    parameter = target(flag) if isinstance(flag, dict) else None
    if flag is not None and parameter is None and not isinstance(flag, (str, bool)):
        problems.append(f"{fid}: SWEEP_ENABLED must be a literal or a !Ref to a parameter")
    sweeps = [
        (name, e.get("Properties") or {})
        for name, e in (t.props(fid).get("Events") or {}).items()
        if isinstance(e, dict) and e.get("Type") == "Schedule"
    ]
    may_run = parameter in t.parameters if parameter else truthy(flag)
    if may_run and not sweeps:
        problems.append(f"{fid}: SWEEP_ENABLED may be true but no Schedule event runs the sweep")
    for name, props in sweeps:
        state = props.get("State")
        enabled = props.get("Enabled")
        off = state == "DISABLED" or enabled is False or (isinstance(enabled, str) and enabled.lower() == "false")
        if parameter:
            if not sweep_follows(t, state, parameter):
                problems.append(
                    f"{fid}: the {name} schedule's State must be !If [a condition that "
                    f"{parameter} equals \"true\", ENABLED, DISABLED], the parameter of its "
                    "SWEEP_ENABLED: a sweep would otherwise run while the function skips it, or "
                    "never run while it is asked for"
                )
        elif truthy(flag) == off:
            problems.append(f"{fid}: the {name} schedule is {'off' if off else 'on'} while SWEEP_ENABLED says {describe(flag)}")
        if off and not parameter:
            continue
        period = rate_seconds(props.get("Schedule"))
        if period is None or period > MAX_SWEEP_SECS:
            problems.append(
                f"{fid}: the {name} sweep, when enabled, must run at least every {MAX_SWEEP_SECS} s "
                "(a rate() expression): a prediction it finds must be reconciled inside the "
                "provider's 300-second output window"
            )
    return problems


def check_reconcilers(t: Template) -> list[str]:
    problems = []
    windows = [retention_window(t.environment(fid).get("OUTPUT_RETENTION_SECS")) for fid, _q in archivers(t)]
    w = min([x for x in windows if x] or [DEFAULT_WINDOW_SECS])
    events_queues = {qid for _fid, qid in archivers(t)}
    feeds: dict[str, list[str]] = {}
    for _label, fn, queue_value, _ev in event_sources(t):
        feeds.setdefault(target(queue_value) or "", []).append(fn)
    for qid in sorted(check_queues(t)):
        named_by = sorted(
            fid for fid, _r, _p in t.functions() if target(t.environment(fid).get("CHECK_QUEUE_URL")) == qid
        )
        if t.type_of(qid) != "AWS::SQS::Queue":
            problems.append(f"{', '.join(named_by)}: CHECK_QUEUE_URL names {qid}, not a queue of this template")
            continue
        readers = [f for f in feeds.get(qid, []) if f]
        if not readers:
            problems.append(
                f"{qid}: {', '.join(named_by)} send checks to it, but no function has an SQS event "
                "source on it: no prediction would ever be checked (functions/reconciler)"
            )
        visibility = literal_int(t.props(qid).get("VisibilityTimeout", 30))
        if visibility is not None and visibility >= w:
            problems.append(
                f"{qid}: VisibilityTimeout {visibility} s is not under the {w} s output window: a "
                "check that failed would come back after a missed webhook's outputs are gone"
            )
        policy = redrive(t.props(qid)) or {}
        dlq = target(policy.get("deadLetterTargetArn"))
        if t.type_of(dlq) == "AWS::SQS::Queue":
            depth = [
                (aid, p)
                for aid, p in alarms_on_queue(t, dlq, "ApproximateNumberOfMessagesVisible")
                if has_actions(p.get("AlarmActions"))
                and (
                    (p.get("ComparisonOperator") == "GreaterThanThreshold" and literal_int(p.get("Threshold")) == 0)
                    or (p.get("ComparisonOperator") == "GreaterThanOrEqualToThreshold" and literal_int(p.get("Threshold")) == 1)
                )
            ]
            if not depth:
                problems.append(
                    f"{dlq}: {qid}'s DLQ has no alarm on its depth (ApproximateNumberOfMessagesVisible "
                    "> 0, with AlarmActions): a prediction whose check failed for good would be "
                    "watched by nobody"
                )
        ages = [
            literal_int(p.get("Threshold"))
            for _aid, p in alarms_on_queue(t, qid, "ApproximateAgeOfOldestMessage")
            if has_actions(p.get("AlarmActions"))
        ]
        if not any(x is not None and x < w for x in ages):
            problems.append(
                f"{qid}: no ApproximateAgeOfOldestMessage alarm (with AlarmActions) below the {w} s "
                "output window; nobody would hear the reconciler falling behind"
            )
        for fid in named_by:
            env = t.environment(fid)
            role = target(t.function_setting(fid, "Role"))
            if fid in readers:
                continue
            # A sender (the api): it schedules first checks and writes the ledger.
            if not grants_on(t, role, "sqs:SendMessage", qid):
                problems.append(f"{role}: {fid} needs sqs:SendMessage on {qid} (its CHECK_QUEUE_URL)")
            for metric in SENDER_METRICS:
                problems += metric_alarm_problems(
                    t, fid, metric, SENDER_DIMENSION,
                    "a prediction whose ledger record or first check failed would be followed by nobody",
                )
            problems += delay_problems(
                t, fid, "CHECK_FIRST_DELAY_SECS",
                "a prediction whose webhook never comes must be reconciled inside the output window",
            )
            bucket = target(env.get("ARCHIVE_BUCKET"))
            if t.type_of(bucket) == "AWS::S3::Bucket":
                puts = object_grants(t, role, bucket).get("s3:PutObject", set())
                if LEDGER_OBJECT not in puts:
                    problems.append(f"{role}: {fid} needs s3:PutObject on {bucket}'s {LEDGER_OBJECT} (the ledger)")
                for pattern in sorted(puts):
                    if pattern != LEDGER_OBJECT and (pattern.startswith("predictions/") or covers(pattern, LEDGER_OBJECT)):
                        problems.append(
                            f"{role}: {fid} may s3:PutObject on {pattern!r}; under predictions/ it "
                            f"writes only the ledger, {LEDGER_OBJECT} (the archive is the archiver's)"
                        )
        for fid in readers:
            problems += check_reconciler(t, fid, qid, events_queues, w)
    return problems


def check_reconciler(t: Template, fid: str, qid: str, events_queues: set[str], w: int) -> list[str]:
    problems = []
    env = t.environment(fid)
    role = target(t.function_setting(fid, "Role"))
    if target(env.get("CHECK_QUEUE_URL")) != qid:
        problems.append(
            f"{fid}: reads checks from {qid} but its CHECK_QUEUE_URL is "
            f"{describe(env.get('CHECK_QUEUE_URL'))}: the next check must go back to that queue"
        )
    for action in POLL_ACTIONS:
        if not grants_on(t, role, action, qid):
            problems.append(f"{role}: {fid}'s event source needs {action} on {qid}")
    for label, fn, queue_value, ev in event_sources(t):
        if fn == fid and target(queue_value) == qid and "MaximumConcurrency" not in (ev.get("ScalingConfig") or {}):
            problems.append(
                f"{label}: no ScalingConfig MaximumConcurrency; a burst of checks could take the "
                "account's concurrency from the archiver, whose throttled receives count toward "
                "its MaxReceiveCount"
            )
    if not grants_on(t, role, "sqs:SendMessage", qid):
        problems.append(f"{role}: {fid} needs sqs:SendMessage on {qid} (the next check)")
    events = target(env.get("QUEUE_URL"))
    if events not in events_queues:
        problems.append(
            f"{fid}: QUEUE_URL {describe(env.get('QUEUE_URL'))} is not a queue an archiver reads: a "
            "reconciled event must take the normal path (events queue, archiver)"
        )
    elif not grants_on(t, role, "sqs:SendMessage", events):
        problems.append(f"{role}: {fid} needs sqs:SendMessage on {events} (reconciled events)")
    secret = target(env.get("API_KEY_SECRET_ID"))
    if t.type_of(secret) != "AWS::SecretsManager::Secret":
        problems.append(f"{fid}: API_KEY_SECRET_ID {describe(env.get('API_KEY_SECRET_ID'))} is not a secret of this template")
    elif not grants_on(t, role, "secretsmanager:GetSecretValue", secret):
        problems.append(f"{role}: {fid} needs secretsmanager:GetSecretValue on {secret}")
    for stmt in allow_statements(t, role):
        sm = [a for a in leaves(stmt.get("Action")) if str(a).startswith("secretsmanager:")]
        if not sm:
            continue
        others = [a for a in sm if a != "secretsmanager:GetSecretValue"]
        foreign = [target(r) or describe(r) for r in leaves(stmt.get("Resource")) if target(r) != secret]
        if others or foreign:
            problems.append(
                f"{role}: {fid} may {', '.join(map(str, others or sm))} on {', '.join(map(str, foreign or [secret]))}; "
                f"it only reads the provider API key ({secret})"
            )
    bucket = target(env.get("ARCHIVE_BUCKET"))
    if t.type_of(bucket) != "AWS::S3::Bucket":
        problems.append(f"{fid}: ARCHIVE_BUCKET {describe(env.get('ARCHIVE_BUCKET'))} is not a bucket of this template")
    else:
        grants = object_grants(t, role, bucket)
        for action, patterns in sorted(grants.items()):
            for pattern in sorted(patterns):
                if action == "s3:GetObject":
                    if not pattern.startswith(RECONCILER_READ_PREFIXES):
                        problems.append(
                            f"{role}: {fid} may s3:GetObject on {pattern!r}; it reads only under "
                            f"{' and '.join(RECONCILER_READ_PREFIXES)}"
                        )
                elif action == "s3:PutObject":
                    if pattern not in RECONCILER_WRITES:
                        problems.append(
                            f"{role}: {fid} may s3:PutObject on {pattern!r}; it writes only "
                            f"{' and '.join(RECONCILER_WRITES)} (the archive is the archiver's)"
                        )
                else:
                    problems.append(
                        f"{role}: {fid} may {action} on {pattern!r}; it only reads (s3:GetObject) and "
                        f"writes {' and '.join(RECONCILER_WRITES)} (s3:PutObject)"
                    )
        if not any(covers(p, STATE_OBJECT) for p in grants.get("s3:GetObject", set())):
            problems.append(f"{role}: {fid} needs s3:GetObject on {bucket}'s {STATE_OBJECT} (is it archived?)")
        for needed in (STALLED_OBJECT, *STALLED_LOG):
            if needed not in grants.get("s3:PutObject", set()):
                problems.append(f"{role}: {fid} needs s3:PutObject on {bucket}'s {needed} (the stalled marker and its log entry)")
        for action in ("s3:GetObject", "s3:PutObject"):
            if CHAIN_OBJECT not in grants.get(action, set()):
                problems.append(
                    f"{role}: {fid} needs {action} on {bucket}'s {CHAIN_OBJECT} (one chain of checks "
                    "per prediction: a duplicated check would start a second one)"
                )
    problems += delay_problems(
        t, fid, "CHECK_MAX_INTERVAL_SECS",
        f"a prediction that completes right after a check must be seen well inside the {w} s output window",
    )
    why = {
        "MissedWebhooks": "a webhook the provider never delivered would go unnoticed",
        "StalledPredictions": "a prediction that never finished would go unnoticed",
        "ReconcileUnauthorized": "a refused API key would stop reconciliation unnoticed until predictions go stalled",
    }
    for metric in RECONCILER_METRICS:
        problems += metric_alarm_problems(t, fid, metric, RECONCILER_DIMENSION, why.get(metric, "nobody would hear of it"))
    problems += check_sweep(t, fid)
    return problems


def check(data: dict, exceptions: dict | None = None) -> list[str]:
    """Every problem found in the template `data` (empty: it passes)."""
    t = Template(data)
    return (
        check_least_privilege(t, EXCEPTIONS if exceptions is None else exceptions)
        + check_event_sources(t)
        + check_tls_only(t)
        + check_rotation(t)
        + check_buckets(t)
        + check_local_only(t)
        + check_claim_check(t)
        + check_logging(t)
        + check_alarms(t)
        + check_max_receive_count(t)
        + check_event_log_retention(t)
        + check_output_window(t)
        + check_spool(t)
        + check_reconcilers(t)
    )


def summary(data: dict) -> str:
    t = Template(data)
    statements = sum(
        len(as_list(doc.get("Statement"))) for _l, _w, doc, _r in policy_documents(t) if isinstance(doc, dict)
    )
    sources = sum(1 for _ in event_sources(t))
    schedules = sum(1 for _ in t.of_type("AWS::SecretsManager::RotationSchedule"))
    buckets = sum(1 for _ in t.of_type("AWS::S3::Bucket"))
    return (
        f"{statements} policy statements, {sources} SQS event source(s), "
        f"{schedules} rotation schedule(s), {buckets} bucket(s)"
    )


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else DEFAULT_TEMPLATE
    data = load(path)
    problems = check(data)
    for p in problems:
        print(f"{path}: {p}")
    if problems:
        print(f"check_template: {len(problems)} problem(s) in {path}")
        return 1
    print(f"check_template: {path} OK ({summary(data)}; {len(EXCEPTIONS)} exception(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
