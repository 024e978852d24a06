"""Tests of infra/check_template.py: the real template passes, and each rule catches a
copy of it broken in the way the rule is about, with a message naming the resource.

    .tools/venv-sam/bin/python -m unittest discover -s infra -p 'test_*.py'

stdlib unittest only; the checker itself needs cfn-lint's YAML decoder (the venv-sam that
scripts/lib/tools.sh's hv_sam installs). scripts/check-infra.sh runs these.
"""

import copy
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import check_template as ct  # noqa: E402

TEMPLATE = HERE / "template.yaml"


class RealTemplate(unittest.TestCase):
    def test_the_template_passes(self):
        self.assertEqual(ct.check(ct.load(TEMPLATE)), [])

    def test_the_command_exits_0_on_the_template_and_1_on_a_broken_copy(self):
        ok = subprocess.run(
            [sys.executable, str(HERE / "check_template.py"), str(TEMPLATE)],
            capture_output=True,
            text=True,
        )
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)
        self.assertIn("OK", ok.stdout)

        text = TEMPLATE.read_text()
        self.assertIn("rate(90 days)", text)
        with tempfile.TemporaryDirectory() as d:
            broken = Path(d) / "template.yaml"
            broken.write_text(text.replace("rate(90 days)", "rate(30 days)", 1))
            bad = subprocess.run(
                [sys.executable, str(HERE / "check_template.py"), str(broken)],
                capture_output=True,
                text=True,
            )
        self.assertEqual(bad.returncode, 1, bad.stdout + bad.stderr)
        self.assertIn("WebhookSecretRotation: rotates WebhookSecret", bad.stdout)
        self.assertIn("1 problem(s)", bad.stdout)


class ReconcilerSizing(unittest.TestCase):
    """ReconcilerMaxConcurrency by Little's law: submissions a second x checks per
    prediction x seconds per check (a provider GET, ~1 s)."""

    @staticmethod
    def checks_within(first: int, base: int, interval: int, seconds: int) -> int:
        at, n, attempt = first, 0, 0
        while at <= seconds:
            n += 1
            at += min(interval, base * 2**attempt)
            attempt += 1
        return n

    def test_the_prod_example_keeps_up_with_ten_submissions_a_second(self):
        import tomllib

        data = ct.load(TEMPLATE)
        params = data["Parameters"]
        first = int(params["CheckFirstDelaySecs"]["Default"])
        interval = int(params["CheckMaxIntervalSecs"]["Default"])
        checks = self.checks_within(first, 10, interval, 300)
        self.assertEqual(checks, 7, "a 5-minute prediction: checks at 30, 40, 60, 100, 160, 220, 280 s")
        needed = 10 * checks * 1
        config = tomllib.loads((TEMPLATE.parent.parent / "samconfig.toml").read_text())
        overrides = dict(o.split("=", 1) for o in config["prod"]["deploy"]["parameters"]["parameter_overrides"])
        self.assertIn("ReconcilerMaxConcurrency", overrides, "the prod example must size the reconciler")
        self.assertGreaterEqual(int(overrides["ReconcilerMaxConcurrency"]), needed)
        # The default (2) keeps up with 2 / 7 submissions a second, not ~10.
        description = params["ReconcilerMaxConcurrency"]["Description"]
        self.assertNotIn("~10 submissions a second", description)
        self.assertIn("~70", description)


class Mutations(unittest.TestCase):
    """Each test breaks one thing in a copy of the real template."""

    @classmethod
    def setUpClass(cls):
        cls.base = ct.load(TEMPLATE)

    def problems(self, mutate, exceptions=None):
        data = copy.deepcopy(self.base)
        mutate(data["Resources"], data)
        return ct.check(data, exceptions)

    def assertCaught(self, problems, *fragments):
        self.assertTrue(
            any(all(f in p for f in fragments) for p in problems),
            f"no problem mentions all of {fragments}; got:\n  " + "\n  ".join(problems),
        )

    def assertClean(self, problems):
        self.assertEqual(problems, [])

    @staticmethod
    def statement(resources, role, sid):
        for policy in resources[role]["Properties"]["Policies"]:
            for stmt in policy["PolicyDocument"]["Statement"]:
                if stmt.get("Sid") == sid:
                    return stmt
        raise KeyError(f"{role} has no statement {sid}")

    def assertHeldToEveryFunctionsRules(self, fid, role, sid):
        """Rules 1, 5 and 7 catch `fid` without its own role, without JSON logging, with a
        wildcard action in its role's statement `sid`, or with a local-only setting."""

        def no_role(r, _):
            del r[fid]["Properties"]["Role"]

        self.assertCaught(self.problems(no_role), fid, "has no Role")

        def no_logging(r, _):
            del r[fid]["Properties"]["LoggingConfig"]

        self.assertCaught(self.problems(no_logging), fid, "no LoggingConfig")

        def wildcard(r, _):
            self.statement(r, role, sid)["Action"] = "s3:*"

        self.assertCaught(self.problems(wildcard), role, f"({sid})", "wildcard action 's3:*'")

        def local(r, _):
            r[fid]["Properties"]["Environment"]["Variables"]["AWS_ENDPOINT_URL"] = "http://x"

        self.assertCaught(self.problems(local), fid, "AWS_ENDPOINT_URL")

    def assertAlarmedOnOne(self, fid, alarm, metric):
        """`alarm` is the one watching `fid`'s `metric`: removed or on another function, the
        metric is unwatched; waiting for several or without actions, it is refused."""

        def removed(r, _):
            del r[alarm]

        self.assertCaught(self.problems(removed), fid, metric)

        def other_function(r, _):
            r[alarm]["Properties"]["Dimensions"][0]["Value"] = "someone-else"

        self.assertCaught(self.problems(other_function), fid, metric)

        def waits(r, _):
            r[alarm]["Properties"]["Threshold"] = 10

        self.assertCaught(self.problems(waits), alarm, f"single {metric}")

        def silent(r, _):
            r[alarm]["Properties"]["AlarmActions"] = []

        self.assertCaught(self.problems(silent), alarm, "no AlarmActions")

    # ---- rule 1: least privilege -------------------------------------------------------

    def test_action_star(self):
        def m(r, _):
            self.statement(r, "ArchiverRole", "WriteArchive")["Action"] = "*"

        self.assertCaught(self.problems(m), "ArchiverRole", "(WriteArchive)", "wildcard action '*'")

    def test_service_star_action(self):
        def m(r, _):
            self.statement(r, "ArchiverRole", "WriteArchive")["Action"] = ["s3:*"]

        self.assertCaught(self.problems(m), "ArchiverRole", "wildcard action 's3:*'")

    def test_partial_wildcard_action(self):
        def m(r, _):
            self.statement(r, "ApiRole", "ReadKeys")["Action"] = "secretsmanager:Get*"

        self.assertCaught(self.problems(m), "ApiRole", "(ReadKeys)", "'secretsmanager:Get*'")

    def test_resource_star(self):
        def m(r, _):
            self.statement(r, "RotatorRole", "RotateManagedSecrets")["Resource"] = "*"

        self.assertCaught(self.problems(m), "RotatorRole", "(RotateManagedSecrets)", "Resource '*'")

    def test_resource_star_inside_a_condition(self):
        def m(r, _):
            self.statement(r, "ApiRole", "ReadArchive")["Resource"] = {
                "Fn::If": ["VersioningEnabled", "*", {"Ref": "AWS::NoValue"}]
            }

        self.assertCaught(self.problems(m), "ApiRole", "(ReadArchive)", "Resource '*'")

    def test_not_action(self):
        def m(r, _):
            stmt = self.statement(r, "ApiRole", "ReadKeys")
            stmt["NotAction"] = stmt.pop("Action")

        self.assertCaught(self.problems(m), "ApiRole", "NotAction")

    def test_edge_user_wildcard(self):
        def m(r, _):
            r["EdgeSenderUser"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]["Action"] = "sqs:*"

        self.assertCaught(self.problems(m), "EdgeSenderUser", "policy send-to-events-queue", "'sqs:*'")

    def test_bucket_policy_allowing_anyone(self):
        def m(r, _):
            r["ArchiveBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"].append(
                {
                    "Sid": "Public",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": {"Fn::Sub": "${ArchiveBucket.Arn}/*"},
                }
            )

        self.assertCaught(self.problems(m), "ArchiveBucketPolicy", "(Public)", "Principal '*'")

    def test_deny_statements_may_use_wildcards(self):
        # The TLS-only policies deny s3:* / sqs:* to Principal *: that is not a grant.
        policy = self.base["Resources"]["ArchiveBucketPolicy"]["Properties"]["PolicyDocument"]
        self.assertEqual(policy["Statement"][0]["Action"], "s3:*")
        self.assertClean(self.problems(lambda r, _: None))

    def test_managed_policy_on_a_role(self):
        def m(r, _):
            r["ApiRole"]["Properties"]["ManagedPolicyArns"] = ["arn:aws:iam::aws:policy/AmazonS3FullAccess"]

        self.assertCaught(self.problems(m), "ApiRole", "managed policy", "AmazonS3FullAccess")

    def test_sam_function_without_its_own_role(self):
        def m(r, _):
            del r["ApiFunction"]["Properties"]["Role"]

        self.assertCaught(self.problems(m), "ApiFunction", "AWSLambdaBasicExecutionRole")

    def test_broad_sam_policy_template(self):
        def m(r, _):
            r["ArchiverFunction"]["Properties"]["Policies"] = [
                {"SQSPollerPolicy": {"QueueName": {"Fn::GetAtt": ["EventsQueue", "QueueName"]}}},
                {"S3CrudPolicy": {"BucketName": {"Ref": "ArchiveBucket"}}},
            ]

        problems = self.problems(m)
        self.assertCaught(problems, "ArchiverFunction", "'S3CrudPolicy'")
        self.assertFalse(any("SQSPollerPolicy'" in p for p in problems), problems)

    def test_sam_function_statement_with_wildcard(self):
        def m(r, _):
            r["ApiFunction"]["Properties"]["Policies"] = [
                {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
            ]

        self.assertCaught(self.problems(m), "ApiFunction", "Policies[0]", "Resource '*'")

    def test_an_exception_needs_an_entry_naming_the_statement(self):
        def m(r, _):
            self.statement(r, "RotatorRole", "ReadCloudflareToken")["Resource"] = "*"

        self.assertCaught(self.problems(m), "RotatorRole", "(ReadCloudflareToken)")
        allowed = {("RotatorRole", "ReadCloudflareToken"): "test: reason"}
        self.assertClean(self.problems(m, exceptions=allowed))

    # ---- rule 2: SQS event sources ----------------------------------------------------

    def test_queue_without_redrive_policy(self):
        def m(r, _):
            del r["EventsQueue"]["Properties"]["RedrivePolicy"]

        self.assertCaught(self.problems(m), "EventsQueue", "no RedrivePolicy", "ArchiverFunction")

    def test_dlq_removed(self):
        def m(r, _):
            del r["EventsDlq"]
            r["QueuesTlsOnlyPolicy"]["Properties"]["Queues"] = [{"Ref": "EventsQueue"}]
            del r["DlqAlarm"]

        self.assertCaught(self.problems(m), "EventsQueue", "deadLetterTargetArn", "not a queue of this template")

    def test_visibility_timeout_below_the_timeout(self):
        def m(r, _):
            r["EventsQueue"]["Properties"]["VisibilityTimeout"] = 100

        self.assertCaught(
            self.problems(m), "EventsQueue", "VisibilityTimeout 100 s", "ArchiverFunction's Timeout (120 s)"
        )

    def test_function_timeout_raised_past_the_queue(self):
        def m(r, _):
            r["ArchiverFunction"]["Properties"]["Timeout"] = 200

        self.assertCaught(self.problems(m), "EventsQueue", "VisibilityTimeout 130 s", "= 200 s")

    def test_batching_window_counts(self):
        def m(r, _):
            r["ArchiverFunction"]["Properties"]["Events"]["Queue"]["Properties"]["MaximumBatchingWindowInSeconds"] = 20

        self.assertCaught(self.problems(m), "EventsQueue", "+ 20 s batching window = 140 s")

    def test_event_source_without_partial_batch_responses(self):
        def m(r, _):
            del r["ArchiverFunction"]["Properties"]["Events"]["Queue"]["Properties"]["FunctionResponseTypes"]

        self.assertCaught(self.problems(m), "ArchiverFunction: event Queue", "ReportBatchItemFailures")

    def test_raw_event_source_mapping_is_checked_too(self):
        def m(r, _):
            del r["ArchiverFunction"]["Properties"]["Events"]
            r["Mapping"] = {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {
                    "EventSourceArn": {"Fn::GetAtt": ["EventsQueue", "Arn"]},
                    "FunctionName": {"Ref": "ArchiverFunction"},
                },
            }

        self.assertCaught(self.problems(m), "Mapping", "ReportBatchItemFailures")

    def test_queue_without_tls_only_policy(self):
        def m(r, _):
            del r["QueuesTlsOnlyPolicy"]

        self.assertCaught(self.problems(m), "EventsDlq", "aws:SecureTransport")

    # ---- rule 3: rotation -------------------------------------------------------------

    def test_rotation_schedule_removed(self):
        def m(r, _):
            del r["WebhookSecretRotation"]

        self.assertCaught(self.problems(m), "WebhookSecret", "no AWS::SecretsManager::RotationSchedule")

    def test_rotated_secret_removed(self):
        def m(r, _):
            for lid in ("ProviderApiKeyRotation", "RotatorInvokeForProviderApiKey"):
                del r[lid]
            r["ProviderApiKeySecret"]["Type"] = "AWS::SSM::Parameter"

        self.assertCaught(self.problems(m), "ProviderApiKeySecret", "expected a rotated")

    def test_thirty_days(self):
        def m(r, _):
            r["ProviderApiKeyRotation"]["Properties"]["RotationRules"] = {"ScheduleExpression": "rate(30 days)"}

        self.assertCaught(self.problems(m), "ProviderApiKeyRotation", "rate(30 days)", "not every 90 days")

    def test_automatically_after_days(self):
        def ninety(r, _):
            r["ProviderApiKeyRotation"]["Properties"]["RotationRules"] = {"AutomaticallyAfterDays": 90}

        def thirty(r, _):
            r["ProviderApiKeyRotation"]["Properties"]["RotationRules"] = {"AutomaticallyAfterDays": 30}

        self.assertClean(self.problems(ninety))
        self.assertCaught(self.problems(thirty), "ProviderApiKeyRotation", "not every 90 days")

    def test_cron_is_not_a_period(self):
        def m(r, _):
            r["WebhookSecretRotation"]["Properties"]["RotationRules"] = {"ScheduleExpression": "cron(0 8 1 * ? *)"}

        self.assertCaught(self.problems(m), "WebhookSecretRotation", "cron(0 8 1")

    def test_schedule_not_waiting_for_the_invoke_permission(self):
        def m(r, _):
            del r["WebhookSecretRotation"]["DependsOn"]

        self.assertCaught(self.problems(m), "WebhookSecretRotation", "DependsOn", "(RotatorInvokeForWebhookSecret)")

    def test_schedule_waiting_for_another_secrets_permission(self):
        def m(r, _):
            r["WebhookSecretRotation"]["DependsOn"] = "RotatorInvokeForProviderApiKey"

        self.assertCaught(self.problems(m), "WebhookSecretRotation", "DependsOn", "(RotatorInvokeForWebhookSecret)")

    def test_no_invoke_permission(self):
        def m(r, _):
            del r["RotatorInvokeForWebhookSecret"]
            r["WebhookSecretRotation"]["DependsOn"] = "RotatorInvokeForProviderApiKey"
            r["RotatorInvokeForProviderApiKey"]["Properties"]["Principal"] = "events.amazonaws.com"

        self.assertCaught(self.problems(m), "WebhookSecretRotation", "secretsmanager.amazonaws.com")

    def test_secret_managed_by_the_rotator_without_a_schedule(self):
        def m(r, _):
            env = r["RotatorFunction"]["Properties"]["Environment"]["Variables"]
            env["MANAGED_SECRET_IDS"] = {"Fn::Sub": "${WebhookSecret},${ProviderApiKeySecret},${CallerKeysSecret}"}

        self.assertCaught(self.problems(m), "CallerKeysSecret", "MANAGED_SECRET_IDS", "no AWS::SecretsManager::RotationSchedule")

    def test_scheduled_secret_the_rotator_would_refuse(self):
        def m(r, _):
            env = r["RotatorFunction"]["Properties"]["Environment"]["Variables"]
            env["MANAGED_SECRET_IDS"] = {"Ref": "WebhookSecret"}

        self.assertCaught(self.problems(m), "ProviderApiKeyRotation", "does not list ProviderApiKeySecret")

    def test_rotation_interval_env_disagrees(self):
        def m(r, _):
            r["RotatorFunction"]["Properties"]["Environment"]["Variables"]["ROTATION_INTERVAL_DAYS"] = "30"

        self.assertCaught(self.problems(m), "RotatorFunction", "ROTATION_INTERVAL_DAYS")

    def test_api_key_grace_not_above_the_cache_ttl(self):
        def m(_r, data):
            data["Parameters"]["ApiKeyGraceSecs"]["MinValue"] = 300

        self.assertCaught(self.problems(m), "RotatorFunction", "API_KEY_GRACE_SECS", "ApiFunction")

    def test_webhook_grace_not_above_the_cache_ttl(self):
        # In general key mode the old API key signs webhooks of predictions created under
        # it for one cache TTL after finishSecret.
        def m(_r, data):
            data["Parameters"]["WebhookGraceSecs"]["MinValue"] = 300

        self.assertCaught(self.problems(m), "RotatorFunction", "WEBHOOK_GRACE_SECS", "general key mode")

    def test_managed_secret_ids_by_key_mode_are_read_in_both_branches(self):
        # The template's MANAGED_SECRET_IDS is an Fn::If on the key mode; a branch that
        # drops the API key is caught.
        def m(r, _):
            env = r["RotatorFunction"]["Properties"]["Environment"]["Variables"]
            env["MANAGED_SECRET_IDS"] = {"Fn::If": ["EnterpriseKeyMode", {"Ref": "WebhookSecret"}, {"Ref": "WebhookSecret"}]}

        self.assertClean(self.problems(lambda r, d: None))
        self.assertCaught(self.problems(m), "ProviderApiKeyRotation", "does not list ProviderApiKeySecret")

    # ---- rule 4: buckets; rule 5: local-only settings -----------------------------------

    def test_public_access_block_incomplete(self):
        def m(r, _):
            r["ArchiveBucket"]["Properties"]["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] = False

        self.assertCaught(self.problems(m), "ArchiveBucket", "BlockPublicPolicy")

    def test_bucket_without_encryption(self):
        def m(r, _):
            del r["ArchiveBucket"]["Properties"]["BucketEncryption"]

        self.assertCaught(self.problems(m), "ArchiveBucket", "default encryption")

    def test_bucket_without_abort_multipart_rule(self):
        def m(r, _):
            rules = r["ArchiveBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
            rules[:] = [x for x in rules if "AbortIncompleteMultipartUpload" not in x]

        self.assertCaught(self.problems(m), "ArchiveBucket", "AbortIncompleteMultipartUpload")

    def test_abort_rule_limited_to_a_prefix(self):
        def m(r, _):
            r["ArchiveBucket"]["Properties"]["LifecycleConfiguration"]["Rules"][0]["Prefix"] = "rejected/"

        self.assertCaught(self.problems(m), "ArchiveBucket", "AbortIncompleteMultipartUpload")

    def test_bucket_without_tls_only_policy(self):
        def m(r, _):
            del r["ArchiveBucketPolicy"]

        self.assertCaught(self.problems(m), "ArchiveBucket", "aws:SecureTransport")

    def test_local_only_setting(self):
        def m(r, _):
            r["ArchiverFunction"]["Properties"]["Environment"]["Variables"]["DOWNLOAD_ALLOW_INSECURE_LOOPBACK"] = "true"

        self.assertCaught(self.problems(m), "ArchiverFunction", "DOWNLOAD_ALLOW_INSECURE_LOOPBACK")

    # ---- rule 6: the claim check ----------------------------------------------------------

    def test_queue_with_the_old_256_kib_limit(self):
        def m(r, _):
            r["EventsQueue"]["Properties"]["MaximumMessageSize"] = 262144

        self.assertCaught(self.problems(m), "EventsQueue", "MaximumMessageSize", "262144")

    def test_edge_user_writing_outside_raw(self):
        def m(r, _):
            for pol in r["EdgeSenderUser"]["Properties"]["Policies"]:
                for stmt in pol["PolicyDocument"]["Statement"]:
                    if stmt.get("Sid") == "PutClaimChecks":
                        stmt["Resource"] = {"Fn::Sub": "${ArchiveBucket.Arn}/predictions/*"}

        self.assertCaught(self.problems(m), "EdgeSenderUser", "predictions/*")

    def test_claim_check_rule_removed(self):
        def m(r, _):
            rules = r["ArchiveBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
            rules[:] = [x for x in rules if x.get("Id") != "expire-claim-checks"]

        self.assertCaught(self.problems(m), "ArchiveBucket", "raw/", "forever")

    def test_claim_checks_expiring_before_the_dlq_is_done(self):
        def m(_r, data):
            data["Parameters"]["ClaimCheckRetentionDays"]["MinValue"] = 3

        self.assertCaught(self.problems(m), "ArchiveBucket", "expire-claim-checks", "3 days")


    # ---- rule 7: observability ------------------------------------------------------------

    def test_function_without_logging_config(self):
        def m(r, _):
            del r["RotatorFunction"]["Properties"]["LoggingConfig"]

        self.assertCaught(self.problems(m), "RotatorFunction", "no LoggingConfig")

    def test_function_logging_text(self):
        def m(r, _):
            r["ApiFunction"]["Properties"]["LoggingConfig"]["LogFormat"] = "Text"

        self.assertCaught(self.problems(m), "ApiFunction", "LogFormat is Text, not JSON")

    def test_function_logging_without_format(self):
        def m(r, _):
            del r["ArchiverFunction"]["Properties"]["LoggingConfig"]["LogFormat"]

        self.assertCaught(self.problems(m), "ArchiverFunction", "not JSON")

    def test_logging_config_in_globals_counts(self):
        def m(r, data):
            config = r["ApiFunction"]["Properties"].pop("LoggingConfig")
            data["Globals"]["Function"]["LoggingConfig"] = config
            for fid in ("ArchiverFunction", "RotatorFunction"):
                del r[fid]["Properties"]["LoggingConfig"]

        self.assertClean(self.problems(m))

    def test_log_levels_above_info_would_drop_the_metrics(self):
        def m(_r, data):
            data["Parameters"]["LogLevel"]["AllowedValues"] = ["INFO", "WARN"]

        self.assertCaught(self.problems(m), "ArchiverFunction", "ApplicationLogLevel may be WARN")

        def literal(r, _):
            r["ApiFunction"]["Properties"]["LoggingConfig"]["ApplicationLogLevel"] = "ERROR"

        self.assertCaught(self.problems(literal), "ApiFunction", "may be ERROR")

    def test_logging_config_with_a_foreign_log_group(self):
        def m(r, _):
            r["ApiFunction"]["Properties"]["LoggingConfig"]["LogGroup"] = "/somewhere/else"

        self.assertCaught(self.problems(m), "ApiFunction", "LogGroup", "/somewhere/else")

    def test_alarm_removed(self):
        for alarm, metric in (
            ("PermanentFailuresAlarm", "PermanentFailures"),
            ("RejectedMessagesAlarm", "RejectedMessages"),
            ("OutputsExpiredAlarm", "OutputsExpired"),
        ):
            with self.subTest(alarm=alarm):

                def m(r, data, alarm=alarm):
                    del r[alarm]
                    body = r["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
                    r["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"] = body.replace(f"${{{alarm}.Arn}}", "x")

                self.assertCaught(self.problems(m), "ArchiverFunction", f"no AWS::CloudWatch::Alarm watches its {metric}")

    def test_alarm_on_another_metric(self):
        def m(r, _):
            r["PermanentFailuresAlarm"]["Properties"]["MetricName"] = "TransientFailures"

        self.assertCaught(self.problems(m), "ArchiverFunction", "PermanentFailures")

    def test_alarm_in_another_namespace(self):
        def m(r, _):
            r["RejectedMessagesAlarm"]["Properties"]["Namespace"] = "hookvault"

        self.assertCaught(self.problems(m), "RejectedMessagesAlarm", "namespace hookvault", "METRICS_NAMESPACE")

    def test_alarm_namespace_follows_the_functions(self):
        def m(r, _):
            env = r["ArchiverFunction"]["Properties"]["Environment"]["Variables"]
            env["METRICS_NAMESPACE"] = "hookvault"

        problems = self.problems(m)
        self.assertCaught(problems, "PermanentFailuresAlarm", "METRICS_NAMESPACE")
        self.assertCaught(problems, "RejectedMessagesAlarm", "METRICS_NAMESPACE")

    def test_archiver_without_metrics_namespace(self):
        def m(r, _):
            del r["ArchiverFunction"]["Properties"]["Environment"]["Variables"]["METRICS_NAMESPACE"]

        self.assertCaught(self.problems(m), "ArchiverFunction", "no METRICS_NAMESPACE")

    def test_alarm_on_another_function(self):
        def m(r, _):
            r["PermanentFailuresAlarm"]["Properties"]["Dimensions"] = [{"Name": "Function", "Value": "api"}]

        self.assertCaught(self.problems(m), "PermanentFailuresAlarm", "Function=archiver")

    def test_alarm_without_dimensions(self):
        def m(r, _):
            del r["RejectedMessagesAlarm"]["Properties"]["Dimensions"]

        self.assertCaught(self.problems(m), "RejectedMessagesAlarm", "Function=archiver")

    def test_alarm_that_waits_for_several(self):
        def m(r, _):
            r["PermanentFailuresAlarm"]["Properties"]["Threshold"] = 5

        self.assertCaught(self.problems(m), "PermanentFailuresAlarm", "single PermanentFailures")

    def test_alarm_on_the_average(self):
        def m(r, _):
            r["RejectedMessagesAlarm"]["Properties"]["Statistic"] = "Average"

        self.assertCaught(self.problems(m), "RejectedMessagesAlarm", "Statistic Sum")

    def test_alarm_above_zero_also_fires_on_one(self):
        def m(r, _):
            props = r["PermanentFailuresAlarm"]["Properties"]
            props["Threshold"] = 0
            props["ComparisonOperator"] = "GreaterThanThreshold"

        self.assertClean(self.problems(m))

    def test_alarm_without_actions(self):
        def m(r, _):
            del r["PermanentFailuresAlarm"]["Properties"]["AlarmActions"]

        self.assertCaught(self.problems(m), "PermanentFailuresAlarm", "no AlarmActions")

    def test_alarm_actions_that_are_always_empty(self):
        def m(r, _):
            r["RejectedMessagesAlarm"]["Properties"]["AlarmActions"] = {
                "Fn::If": ["HasAlarmTopic", [], {"Ref": "AWS::NoValue"}]
            }

        self.assertCaught(self.problems(m), "RejectedMessagesAlarm", "no AlarmActions")

    def test_max_receive_count_written_out_in_the_function(self):
        def m(r, _):
            r["ArchiverFunction"]["Properties"]["Environment"]["Variables"]["MAX_RECEIVE_COUNT"] = "5"

        self.assertCaught(self.problems(m), "ArchiverFunction", "MAX_RECEIVE_COUNT", "same parameter")

    def test_max_receive_count_written_out_in_the_queue(self):
        def m(r, _):
            r["EventsQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] = 5

        self.assertCaught(self.problems(m), "ArchiverFunction", "EventsQueue", "same parameter")

    def test_max_receive_count_from_another_parameter(self):
        def m(r, data):
            data["Parameters"]["OtherCount"] = dict(data["Parameters"]["MaxReceiveCount"])
            r["ArchiverFunction"]["Properties"]["Environment"]["Variables"]["MAX_RECEIVE_COUNT"] = {"Ref": "OtherCount"}

        self.assertCaught(self.problems(m), "ArchiverFunction", "OtherCount", "same parameter")

    def test_max_receive_count_missing_in_the_function(self):
        def m(r, _):
            del r["ArchiverFunction"]["Properties"]["Environment"]["Variables"]["MAX_RECEIVE_COUNT"]

        self.assertCaught(self.problems(m), "ArchiverFunction", "no MAX_RECEIVE_COUNT")

    def test_max_receive_count_parameter_may_be_zero(self):
        def m(_r, data):
            data["Parameters"]["MaxReceiveCount"]["MinValue"] = 0

        self.assertCaught(self.problems(m), "EventsQueue", "maxReceiveCount of at least 1")

    def test_event_log_rule_removed(self):
        def m(r, _):
            rules = r["ArchiveBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
            rules[:] = [x for x in rules if x.get("Id") != "expire-event-log"]

        self.assertCaught(self.problems(m), "ArchiveBucket", "index/", "forever")

    def test_event_log_rule_with_a_written_out_period(self):
        def m(r, _):
            for rule in r["ArchiveBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]:
                if rule.get("Id") == "expire-event-log":
                    rule["ExpirationInDays"] = 90

        self.assertCaught(self.problems(m), "ArchiveBucket", "expire-event-log", "EventLogRetentionDays")

    def test_event_log_rule_on_another_parameter(self):
        def m(r, _):
            for rule in r["ArchiveBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]:
                if rule.get("Id") == "expire-event-log":
                    rule["ExpirationInDays"] = {"Ref": "ClaimCheckRetentionDays"}

        self.assertCaught(self.problems(m), "expire-event-log", "ClaimCheckRetentionDays")

    def test_event_log_rule_disabled(self):
        def m(r, _):
            for rule in r["ArchiveBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]:
                if rule.get("Id") == "expire-event-log":
                    rule["Status"] = "Disabled"

        self.assertCaught(self.problems(m), "ArchiveBucket", "no enabled lifecycle rule on index/")

    def test_event_log_rule_as_a_filter_counts(self):
        def m(r, _):
            for rule in r["ArchiveBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]:
                if rule.get("Id") == "expire-event-log":
                    rule["Filter"] = {"Prefix": rule.pop("Prefix")}

        self.assertClean(self.problems(m))

    def test_archiver_not_allowed_to_write_the_event_log(self):
        def m(r, _):
            stmt = self.statement(r, "ArchiverRole", "WriteArchive")
            stmt["Resource"] = [x for x in stmt["Resource"] if "index/" not in str(x)]

        self.assertCaught(self.problems(m), "ArchiverRole", "index/", "ArchiverFunction")




class OutputWindow(unittest.TestCase):
    """Rule 8: every retry, timeout and alarm fits the provider's output window."""

    @classmethod
    def setUpClass(cls):
        cls.base = ct.load(TEMPLATE)

    problems = Mutations.problems
    assertCaught = Mutations.assertCaught

    def env(self, r):
        return r["ArchiverFunction"]["Properties"]["Environment"]["Variables"]

    def test_retention_must_be_a_literal_list(self):
        for bad in ("skytells", "skytells:0", "skytells=300", {"Ref": "Retention"}):
            with self.subTest(bad=bad):

                def m(r, _, bad=bad):
                    self.env(r)["OUTPUT_RETENTION_SECS"] = bad

                self.assertCaught(self.problems(m), "ArchiverFunction", "OUTPUT_RETENTION_SECS")

    def test_the_queue_visibility_past_the_window(self):
        def m(r, _):
            r["EventsQueue"]["Properties"]["VisibilityTimeout"] = 1800

        self.assertCaught(self.problems(m), "EventsQueue", "VisibilityTimeout 1800 s", "300 s output window")

    def test_a_shorter_window_catches_the_timeout(self):
        def m(r, _):
            self.env(r)["OUTPUT_RETENTION_SECS"] = "skytells:300,fast:100"

        problems = self.problems(m)
        self.assertCaught(problems, "ArchiverFunction", "Timeout 120 s", "100 s output window")
        self.assertCaught(problems, "EventsQueue", "no ApproximateAgeOfOldestMessage alarm below the 100 s")

    def test_retry_budget_over_the_timeout(self):
        def m(r, _):
            self.env(r)["DOWNLOAD_RETRY_BUDGET_MS"] = "120000"

        self.assertCaught(self.problems(m), "ArchiverFunction", "DOWNLOAD_RETRY_BUDGET_MS", "under its Timeout")

    def test_queue_age_alarm_at_six_hours(self):
        def m(r, _):
            r["QueueAgeAlarm"]["Properties"]["Threshold"] = 21600

        self.assertCaught(self.problems(m), "EventsQueue", "ApproximateAgeOfOldestMessage alarm below the 300 s")


class Spool(unittest.TestCase):
    """Rule 9 (and rules 1, 6, 7 for the drainer): what the edge spools is drained."""

    @classmethod
    def setUpClass(cls):
        cls.base = ct.load(TEMPLATE)

    problems = Mutations.problems
    assertCaught = Mutations.assertCaught
    statement = staticmethod(Mutations.statement)
    assertHeldToEveryFunctionsRules = Mutations.assertHeldToEveryFunctionsRules
    assertAlarmedOnOne = Mutations.assertAlarmedOnOne

    def test_the_drainer_is_held_to_every_functions_rules(self):
        self.assertHeldToEveryFunctionsRules("DrainerFunction", "DrainerRole", "DrainSpool")

    def test_the_edge_user_may_only_put_under_spool(self):
        def delete(r, _):
            self.statement(r, "EdgeSenderUser", "PutSpool")["Action"] = ["s3:PutObject", "s3:DeleteObject"]

        self.assertCaught(self.problems(delete), "EdgeSenderUser", "s3:DeleteObject")

        def elsewhere(r, _):
            self.statement(r, "EdgeSenderUser", "PutSpool")["Resource"] = {"Fn::Sub": "${ArchiveBucket.Arn}/spooled/*"}

        self.assertCaught(self.problems(elsewhere), "EdgeSenderUser", "spooled/*")

    def test_a_spool_without_a_drainer(self):
        def m(r, _):
            del r["DrainerFunction"]["Properties"]["Environment"]["Variables"]["SPOOL_BUCKET"]

        self.assertCaught(self.problems(m), "ArchiveBucket", "no function has SPOOL_BUCKET")

    def test_the_drainer_cannot_delete_or_send(self):
        def no_delete(r, _):
            self.statement(r, "DrainerRole", "DrainSpool")["Action"] = ["s3:GetObject"]

        self.assertCaught(self.problems(no_delete), "DrainerRole", "s3:DeleteObject", "spool/*")

        def no_send(r, _):
            self.statement(r, "DrainerRole", "QueueSpooledEvents")["Resource"] = {"Fn::GetAtt": ["EventsDlq", "Arn"]}

        self.assertCaught(self.problems(no_send), "DrainerRole", "sqs:SendMessage on EventsQueue")

        def other_queue(r, _):
            r["DrainerFunction"]["Properties"]["Environment"]["Variables"]["QUEUE_URL"] = "https://sqs/1/q"

        self.assertCaught(self.problems(other_queue), "DrainerFunction", "QUEUE_URL")

    def test_the_drainer_reaching_past_the_spool(self):
        def m(r, _):
            self.statement(r, "DrainerRole", "DrainSpool")["Resource"] = [
                {"Fn::Sub": "${ArchiveBucket.Arn}/spool/*"},
                {"Fn::Sub": "${ArchiveBucket.Arn}/events/*"},
            ]

        self.assertCaught(self.problems(m), "DrainerRole", "events/*", "only spool/")

    def test_no_sweep(self):
        def m(r, _):
            del r["DrainerFunction"]["Properties"]["Events"]["Sweep"]

        self.assertCaught(self.problems(m), "DrainerFunction", "no Schedule event")

    def test_a_sweep_slower_than_a_minute(self):
        def m(r, _):
            r["DrainerFunction"]["Properties"]["Events"]["Sweep"]["Properties"]["Schedule"] = "rate(5 minutes)"

        self.assertCaught(self.problems(m), "DrainerFunction", "at least every 60 s")

    def test_no_object_created_events(self):
        def removed(r, _):
            del r["DrainerFunction"]["Properties"]["Events"]["SpoolObjectCreated"]

        self.assertCaught(self.problems(removed), "DrainerFunction", "object-created events")

        def other_prefix(r, _):
            ev = r["DrainerFunction"]["Properties"]["Events"]["SpoolObjectCreated"]
            ev["Properties"]["Pattern"]["detail"]["object"]["key"] = [{"prefix": "raw/"}]

        self.assertCaught(self.problems(other_prefix), "DrainerFunction", "object-created events")

        def bucket_not_sending(r, _):
            del r["ArchiveBucket"]["Properties"]["NotificationConfiguration"]

        self.assertCaught(self.problems(bucket_not_sending), "DrainerFunction", "EventBridgeEnabled")

    def test_an_s3_notification_counts_too(self):
        def m(r, _):
            r["DrainerFunction"]["Properties"]["Events"]["SpoolObjectCreated"] = {
                "Type": "S3",
                "Properties": {
                    "Bucket": {"Ref": "ArchiveBucket"},
                    "Events": "s3:ObjectCreated:*",
                    "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": "spool/"}]}},
                },
            }

        self.assertEqual(self.problems(m), [])

    def test_spooled_events_alarm(self):
        self.assertAlarmedOnOne("DrainerFunction", "SpooledEventsAlarm", "SpooledEvents")

    def test_a_lifecycle_rule_expiring_the_spool(self):
        def m(r, _):
            r["ArchiveBucket"]["Properties"]["LifecycleConfiguration"]["Rules"].append(
                {"Id": "expire-spool", "Status": "Enabled", "Prefix": "spool/", "ExpirationInDays": 7}
            )

        self.assertCaught(self.problems(m), "ArchiveBucket", "expire-spool", "would be lost")


class MissedWebhooks(unittest.TestCase):
    """Rule 10 (and rules 1, 2, 7 for the reconciler): every submission is checked, and the
    reconciler can do exactly what a check needs."""

    @classmethod
    def setUpClass(cls):
        cls.base = ct.load(TEMPLATE)

    problems = Mutations.problems
    assertCaught = Mutations.assertCaught
    statement = staticmethod(Mutations.statement)
    assertHeldToEveryFunctionsRules = Mutations.assertHeldToEveryFunctionsRules
    assertAlarmedOnOne = Mutations.assertAlarmedOnOne

    @staticmethod
    def env(r, fid="ReconcilerFunction"):
        return r[fid]["Properties"]["Environment"]["Variables"]

    def test_the_reconciler_is_held_to_every_functions_rules(self):
        self.assertHeldToEveryFunctionsRules("ReconcilerFunction", "ReconcilerRole", "ReadArchiveState")

        def star(r, _):
            self.statement(r, "ReconcilerRole", "ReadArchiveState")["Resource"] = "*"

        self.assertCaught(self.problems(star), "ReconcilerRole", "(ReadArchiveState)", "Resource '*'")

    def test_the_reconciler_is_not_taken_for_an_archiver(self):
        # Rules 7 and 8 (MAX_RECEIVE_COUNT, index/, OUTPUT_RETENTION_SECS) are the archiver's.
        self.assertEqual(ct.archivers(ct.Template(self.base)), [("ArchiverFunction", "EventsQueue")])

    def test_its_event_source_reports_batch_item_failures(self):
        def m(r, _):
            del r["ReconcilerFunction"]["Properties"]["Events"]["Checks"]["Properties"]["FunctionResponseTypes"]

        self.assertCaught(self.problems(m), "ReconcilerFunction: event Checks", "ReportBatchItemFailures")

    def test_checks_without_a_concurrency_cap(self):
        def m(r, _):
            del r["ReconcilerFunction"]["Properties"]["Events"]["Checks"]["Properties"]["ScalingConfig"]

        self.assertCaught(self.problems(m), "ReconcilerFunction: event Checks", "MaximumConcurrency")

    def test_the_check_queue_visibility_below_the_reconcilers_timeout(self):
        def m(r, _):
            r["ReconcilerFunction"]["Properties"]["Timeout"] = 90

        self.assertCaught(self.problems(m), "CheckQueue", "VisibilityTimeout 70 s", "ReconcilerFunction's Timeout (90 s)")

    def test_the_check_queue_visibility_past_the_window(self):
        def m(r, _):
            r["CheckQueue"]["Properties"]["VisibilityTimeout"] = 300

        self.assertCaught(self.problems(m), "CheckQueue", "VisibilityTimeout 300 s", "300 s output window")

    def test_a_check_queue_without_a_dlq(self):
        def m(r, _):
            del r["CheckQueue"]["Properties"]["RedrivePolicy"]

        self.assertCaught(self.problems(m), "CheckQueue", "no RedrivePolicy")

    def test_checks_nobody_reads(self):
        def m(r, _):
            del r["ReconcilerFunction"]["Properties"]["Events"]["Checks"]

        self.assertCaught(self.problems(m), "CheckQueue", "ApiFunction", "no function has an SQS event source")

    def test_a_check_queue_url_that_is_not_a_queue(self):
        def m(r, _):
            self.env(r, "ApiFunction")["CHECK_QUEUE_URL"] = {"Ref": "EventsDlqTypo"}

        self.assertCaught(self.problems(m), "ApiFunction", "CHECK_QUEUE_URL names EventsDlqTypo")

    def test_the_reconciler_sending_its_next_check_elsewhere(self):
        def m(r, _):
            self.env(r)["CHECK_QUEUE_URL"] = {"Ref": "EventsQueue"}

        problems = self.problems(m)
        self.assertCaught(problems, "ReconcilerFunction", "reads checks from CheckQueue", "CHECK_QUEUE_URL")

    def test_the_reconciler_cannot_poll_or_send(self):
        def no_poll(r, _):
            self.statement(r, "ReconcilerRole", "PollCheckQueue")["Action"].remove("sqs:DeleteMessage")

        self.assertCaught(self.problems(no_poll), "ReconcilerRole", "sqs:DeleteMessage on CheckQueue")

        def no_resend(r, _):
            self.statement(r, "ReconcilerRole", "RescheduleChecks")["Resource"] = {"Fn::GetAtt": ["CheckDeadLetterQueue", "Arn"]}

        self.assertCaught(self.problems(no_resend), "ReconcilerRole", "sqs:SendMessage on CheckQueue (the next check)")

        def no_events(r, _):
            self.statement(r, "ReconcilerRole", "QueueReconciledEvents")["Resource"] = {"Fn::GetAtt": ["EventsDlq", "Arn"]}

        self.assertCaught(self.problems(no_events), "ReconcilerRole", "sqs:SendMessage on EventsQueue (reconciled events)")

    def test_reconciled_events_that_skip_the_archiver(self):
        def m(r, _):
            self.env(r)["QUEUE_URL"] = {"Ref": "EventsDlq"}

        self.assertCaught(self.problems(m), "ReconcilerFunction", "QUEUE_URL", "not a queue an archiver reads")

    def test_the_reconciler_and_the_secrets(self):
        def no_key(r, _):
            self.statement(r, "ReconcilerRole", "ReadProviderApiKey")["Resource"] = {"Ref": "CallerKeysSecret"}

        problems = self.problems(no_key)
        self.assertCaught(problems, "ReconcilerRole", "GetSecretValue on ProviderApiKeySecret")
        self.assertCaught(problems, "ReconcilerRole", "on CallerKeysSecret", "only reads the provider API key")

        def writes(r, _):
            self.statement(r, "ReconcilerRole", "ReadProviderApiKey")["Action"] = [
                "secretsmanager:GetSecretValue",
                "secretsmanager:PutSecretValue",
            ]

        self.assertCaught(self.problems(writes), "ReconcilerRole", "secretsmanager:PutSecretValue")

        def wrong_secret(r, _):
            self.env(r)["API_KEY_SECRET_ID"] = "hookvault/provider-api-key"

        self.assertCaught(self.problems(wrong_secret), "ReconcilerFunction", "API_KEY_SECRET_ID", "not a secret")

    def test_the_reconciler_reading_past_its_prefixes(self):
        def m(r, _):
            self.statement(r, "ReconcilerRole", "ReadArchiveState")["Resource"].append(
                {"Fn::Sub": "${ArchiveBucket.Arn}/events/*"}
            )

        self.assertCaught(self.problems(m), "ReconcilerRole", "s3:GetObject on 'events/*'", "predictions/ and index/")

        def whole_bucket(r, _):
            self.statement(r, "ReconcilerRole", "ReadArchiveState")["Resource"] = {"Fn::Sub": "${ArchiveBucket.Arn}/*"}

        problems = self.problems(whole_bucket)
        self.assertCaught(problems, "ReconcilerRole", "s3:GetObject on '*'")

    def test_the_reconciler_cannot_read_the_state(self):
        def m(r, _):
            self.statement(r, "ReconcilerRole", "ReadArchiveState")["Resource"] = {
                "Fn::Sub": "${ArchiveBucket.Arn}/predictions/*/manifest.json"
            }

        self.assertCaught(self.problems(m), "ReconcilerRole", "s3:GetObject", "predictions/*/state.json")

    def test_the_reconciler_writing_the_archive(self):
        def predictions(r, _):
            self.statement(r, "ReconcilerRole", "WriteStalledMarkers")["Resource"] = {
                "Fn::Sub": "${ArchiveBucket.Arn}/predictions/*"
            }

        problems = self.problems(predictions)
        self.assertCaught(problems, "ReconcilerRole", "s3:PutObject on 'predictions/*'", "writes only")
        self.assertCaught(problems, "ReconcilerRole", "needs s3:PutObject", "stalled.json")

        def whole_log(r, _):
            stmt = self.statement(r, "ReconcilerRole", "WriteStalledMarkers")
            stmt["Resource"] = [stmt["Resource"][0], {"Fn::Sub": "${ArchiveBucket.Arn}/index/*"}]

        problems = self.problems(whole_log)
        self.assertCaught(problems, "ReconcilerRole", "s3:PutObject on 'index/*'", "writes only")
        self.assertCaught(problems, "ReconcilerRole", "needs s3:PutObject", "index/log/*/stalled/*")

        def delete(r, _):
            self.statement(r, "ReconcilerRole", "PutClaimChecks")["Action"] = ["s3:PutObject", "s3:DeleteObject"]

        self.assertCaught(self.problems(delete), "ReconcilerRole", "s3:DeleteObject on 'raw/*'")

    def test_the_reconciler_and_its_chain_of_checks(self):
        def removed(r, _):
            stmts = r["ReconcilerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
            stmts[:] = [s for s in stmts if s.get("Sid") != "CheckChain"]

        problems = self.problems(removed)
        self.assertCaught(problems, "ReconcilerRole", "needs s3:GetObject", "check.json")
        self.assertCaught(problems, "ReconcilerRole", "needs s3:PutObject", "check.json")

        def read_only(r, _):
            self.statement(r, "ReconcilerRole", "CheckChain")["Action"] = ["s3:GetObject"]

        self.assertCaught(self.problems(read_only), "ReconcilerRole", "needs s3:PutObject", "check.json")

        def wider(r, _):
            self.statement(r, "ReconcilerRole", "CheckChain")["Resource"] = {
                "Fn::Sub": "${ArchiveBucket.Arn}/predictions/*/*.json"
            }

        self.assertCaught(self.problems(wider), "ReconcilerRole", "s3:PutObject on 'predictions/*/*.json'", "writes only")

    def test_the_api_and_the_ledger(self):
        def no_ledger(r, _):
            self.statement(r, "ApiRole", "WriteLedger")["Resource"] = {"Fn::Sub": "${ArchiveBucket.Arn}/idempotency/*"}

        self.assertCaught(self.problems(no_ledger), "ApiRole", "needs s3:PutObject", "submission.json")

        def whole_archive(r, _):
            self.statement(r, "ApiRole", "WriteLedger")["Resource"] = [
                {"Fn::Sub": "${ArchiveBucket.Arn}/predictions/*/submission.json"},
                {"Fn::Sub": "${ArchiveBucket.Arn}/predictions/*"},
            ]

        self.assertCaught(self.problems(whole_archive), "ApiRole", "s3:PutObject on 'predictions/*'", "only the ledger")

        def no_send(r, _):
            self.statement(r, "ApiRole", "ScheduleChecks")["Resource"] = {"Fn::GetAtt": ["EventsQueue", "Arn"]}

        self.assertCaught(self.problems(no_send), "ApiRole", "ApiFunction needs sqs:SendMessage on CheckQueue")

    def test_a_first_check_too_late(self):
        def param(r, data):
            data["Parameters"]["CheckFirstDelaySecs"]["MaxValue"] = 900

        self.assertCaught(self.problems(param), "ApiFunction", "CHECK_FIRST_DELAY_SECS", "at most 60")

        def literal(r, _):
            self.env(r, "ApiFunction")["CHECK_FIRST_DELAY_SECS"] = "120"

        self.assertCaught(self.problems(literal), "ApiFunction", "CHECK_FIRST_DELAY_SECS")

    def test_checks_too_far_apart(self):
        def param(r, data):
            del data["Parameters"]["CheckMaxIntervalSecs"]["MaxValue"]

        self.assertCaught(self.problems(param), "ReconcilerFunction", "CHECK_MAX_INTERVAL_SECS", "at most 60")

        def literal(r, _):
            self.env(r)["CHECK_MAX_INTERVAL_SECS"] = "900"

        self.assertCaught(self.problems(literal), "ReconcilerFunction", "CHECK_MAX_INTERVAL_SECS")

    def test_the_reconcilers_alarms(self):
        for metric in ("MissedWebhooks", "StalledPredictions", "ReconcileUnauthorized"):
            with self.subTest(metric=metric):
                self.assertAlarmedOnOne("ReconcilerFunction", f"{metric}Alarm", metric)

    def test_the_check_senders_alarms(self):
        for metric in ("CheckScheduleFailures", "LedgerWriteFailures"):
            with self.subTest(metric=metric):
                self.assertAlarmedOnOne("ApiFunction", f"{metric}Alarm", metric)

    def test_the_check_dlq_depth_alarm(self):
        def removed(r, _):
            del r["CheckDlqAlarm"]

        self.assertCaught(self.problems(removed), "CheckDeadLetterQueue", "no alarm on its depth")

        def waits(r, _):
            r["CheckDlqAlarm"]["Properties"]["Threshold"] = 10

        self.assertCaught(self.problems(waits), "CheckDeadLetterQueue", "no alarm on its depth")

    def test_the_check_queue_age_alarm(self):
        def removed(r, _):
            del r["CheckQueueAgeAlarm"]

        self.assertCaught(self.problems(removed), "CheckQueue", "ApproximateAgeOfOldestMessage")

        def late(r, _):
            r["CheckQueueAgeAlarm"]["Properties"]["Threshold"] = 900

        self.assertCaught(self.problems(late), "CheckQueue", "ApproximateAgeOfOldestMessage", "below the 300 s")

    def test_a_sweep_slower_than_a_minute(self):
        def m(r, _):
            r["ReconcilerFunction"]["Properties"]["Events"]["Sweep"]["Properties"]["Schedule"] = "rate(5 minutes)"

        self.assertCaught(self.problems(m), "ReconcilerFunction", "Sweep sweep", "at least every 60 s")

    def test_a_sweep_that_does_not_follow_sweep_enabled(self):
        def always(r, _):
            r["ReconcilerFunction"]["Properties"]["Events"]["Sweep"]["Properties"]["State"] = "ENABLED"

        self.assertCaught(self.problems(always), "ReconcilerFunction", "State must be !If", "ReconcilerSweepEnabled")

        def other_condition(r, _):
            r["ReconcilerFunction"]["Properties"]["Events"]["Sweep"]["Properties"]["State"] = {
                "Fn::If": ["HasAlarmTopic", "ENABLED", "DISABLED"]
            }

        self.assertCaught(self.problems(other_condition), "ReconcilerFunction", "State must be !If")

        def no_schedule(r, _):
            del r["ReconcilerFunction"]["Properties"]["Events"]["Sweep"]

        self.assertCaught(self.problems(no_schedule), "ReconcilerFunction", "no Schedule event runs the sweep")

    def test_a_sweep_off_for_good_may_be_slow(self):
        def m(r, _):
            self.env(r)["SWEEP_ENABLED"] = "false"
            props = r["ReconcilerFunction"]["Properties"]["Events"]["Sweep"]["Properties"]
            props["State"] = "DISABLED"
            props["Schedule"] = "rate(1 hour)"

        self.assertEqual(self.problems(m), [])

        def on_while_off(r, _):
            self.env(r)["SWEEP_ENABLED"] = "false"
            r["ReconcilerFunction"]["Properties"]["Events"]["Sweep"]["Properties"]["State"] = "ENABLED"

        self.assertCaught(self.problems(on_while_off), "ReconcilerFunction", "schedule is on while SWEEP_ENABLED")


if __name__ == "__main__":
    unittest.main()
