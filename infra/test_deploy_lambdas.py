"""Tests of scripts/deploy-lambdas.sh, offline: the commands it prints for the fixtures of a
stack's `describe-stacks` and its functions' `get-function-configuration` output
(infra/fixtures/), and its refusals.

    .tools/venv-sam/bin/python -m unittest discover -s infra -p 'test_*.py'

stdlib unittest only (the template test below reads infra/template.yaml with
check_template.py's loader, which needs the venv-sam that scripts/lib/tools.sh's hv_sam
installs). scripts/check-infra.sh runs these, with no network.
"""

import copy
import json
import os
import shlex
import stat
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import check_template as ct  # noqa: E402

SCRIPT = ROOT / "scripts" / "deploy-lambdas.sh"
FIXTURES = HERE / "fixtures"
OUTPUTS = FIXTURES / "describe-stacks.hookvault-dev.json"
CONFIGS = FIXTURES / "function-configuration"

# function -> (binary, the output naming it, the output with its role, its resource, its role's)
FUNCTIONS = {
    "archiver": ("archiver", "ArchiverFunctionName", "ArchiverRoleArn", "ArchiverFunction", "ArchiverRole"),
    "rotator": ("rotator", "RotatorFunctionName", "RotatorRoleArn", "RotatorFunction", "RotatorRole"),
    "api": ("api", "ApiFunctionName", "ApiRoleArn", "ApiFunction", "ApiRole"),
    "drainer": ("drainer", "DrainerFunctionName", "DrainerRoleArn", "DrainerFunction", "DrainerRole"),
    "reconciler": ("reconciler", "ReconcilerFunctionName", "ReconcilerRoleArn", "ReconcilerFunction",
                   "ReconcilerRole"),
}
# Set in the environment of every run: none of it may be printed.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIAHOOKVAULTSENTINEL",
    "AWS_SECRET_ACCESS_KEY": "hookvault-secret-access-key-sentinel",
    "AWS_SESSION_TOKEN": "hookvault-session-token-sentinel",
}


def outputs():
    stack = json.loads(OUTPUTS.read_text())["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def config(name):
    return json.loads((CONFIGS / f"{name}.json").read_text())


def parse_env_file(text):
    """KEY='VALUE' lines, as cargo-lambda's --env-file reader takes them."""
    env = {}
    for line in text.splitlines():
        key, sep, quoted = line.partition("=")
        assert sep and len(quoted) >= 2 and quoted[0] == quoted[-1] == "'", line
        assert key not in env, f"{key} twice"
        env[key] = quoted[1:-1]
    return env


def parse_plan(stdout):
    """The printed script -> (build command or None, {binary: (deploy argv, env)})."""
    lines = stdout.splitlines()
    build, deploys, env_files, i = None, {}, {}, 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("cat > "):
            path = shlex.split(line[len("cat > "):].split(" <<")[0])[0]
            body = []
            i += 1
            while lines[i] != "ENV":
                body.append(lines[i])
                i += 1
            env_files[path] = parse_env_file("\n".join(body))
        elif line.startswith("cargo lambda build "):
            assert build is None, "two builds"
            build = shlex.split(line)
        elif line.startswith("cargo lambda deploy "):
            argv = shlex.split(line)
            binary = argv[argv.index("--binary-name") + 1]
            deploys[binary] = argv
        i += 1
    result = {}
    for binary, argv in deploys.items():
        env = {}
        if "--env-file" in argv:
            env = env_files[argv[argv.index("--env-file") + 1]]
        result[binary] = (argv, env)
    return build, result


def flags(argv):
    """A deploy command's --flag value pairs, and its one positional argument."""
    assert argv[:3] == ["cargo", "lambda", "deploy"], argv
    rest, pairs = argv[3:], {}
    while len(rest) > 1:
        flag, value, rest = rest[0], rest[1], rest[2:]
        assert flag.startswith("--") and flag not in pairs, (flag, argv)
        pairs[flag] = value
    assert len(rest) == 1 and not rest[0].startswith("-"), argv
    return pairs, rest[0]


class Run:
    def script(self, *args, outputs_file=OUTPUTS, config_dir=CONFIGS, env=None, path=None):
        argv = ["bash", str(SCRIPT)]
        if outputs_file is not None:
            argv += ["--outputs-file", str(outputs_file), "--config-dir", str(config_dir)]
        full_env = {**os.environ, **CREDENTIALS, **(env or {})}
        if path is not None:
            full_env["PATH"] = path
        r = subprocess.run(argv + list(args), cwd=ROOT, capture_output=True, text=True, env=full_env)
        for name, value in CREDENTIALS.items():
            self.assertNotIn(value, r.stdout + r.stderr, f"{name} printed")
        return r

    def refused(self, r, *fragments):
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertNotIn("cargo lambda deploy", r.stdout)
        for f in fragments:
            self.assertIn(f, r.stderr)

    def broken_copy(self, d, mutate_outputs=None, mutate_configs=None):
        """Copies of the fixtures in d, changed; returns (outputs file, config dir)."""
        described = json.loads(OUTPUTS.read_text())
        if mutate_outputs:
            mutate_outputs(described["Stacks"][0])
        out = Path(d) / "describe-stacks.json"
        out.write_text(json.dumps(described))
        conf_dir = Path(d) / "function-configuration"
        conf_dir.mkdir()
        for f in CONFIGS.glob("*.json"):
            conf = json.loads(f.read_text())
            if mutate_configs:
                mutate_configs(conf)
            (conf_dir / f.name).write_text(json.dumps(conf))
        return out, conf_dir


class ThePlan(Run, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.result = subprocess.run(
            ["bash", str(SCRIPT), "--outputs-file", str(OUTPUTS), "--config-dir", str(CONFIGS)],
            cwd=ROOT, capture_output=True, text=True, env={**os.environ, **CREDENTIALS})
        cls.build, cls.deploys = parse_plan(cls.result.stdout)

    def test_it_succeeds_and_prints_a_bash_script(self):
        self.assertEqual(self.result.returncode, 0, self.result.stdout + self.result.stderr)
        syntax = subprocess.run(["bash", "-n"], input=self.result.stdout, capture_output=True, text=True)
        self.assertEqual(syntax.returncode, 0, syntax.stderr)
        for value in CREDENTIALS.values():
            self.assertNotIn(value, self.result.stdout + self.result.stderr)

    def test_one_arm64_release_build_of_the_five_binaries(self):
        self.assertEqual(self.build, ["cargo", "lambda", "build", "--release", "--arm64", "--locked",
                                      "--bin", "archiver", "--bin", "rotator", "--bin", "api",
                                      "--bin", "drainer", "--bin", "reconciler"])

    def test_each_function_gets_its_name_binary_role_region_and_whole_environment(self):
        out = outputs()
        self.assertEqual(sorted(self.deploys), sorted(b for b, *_ in FUNCTIONS.values()))
        for key, (binary, name_output, role_output, _, _) in FUNCTIONS.items():
            with self.subTest(function=key):
                argv, env = self.deploys[binary]
                pairs, name = flags(argv)
                self.assertEqual(name, out[name_output])
                self.assertEqual(pairs["--binary-name"], binary)
                self.assertEqual(pairs["--iam-role"], out[role_output])
                self.assertEqual(pairs["--region"], out["Region"])
                conf = config(name)
                self.assertEqual(conf["Architectures"], ["arm64"])
                # Every variable the function has, with its exact value, and nothing else:
                # cargo-lambda then finds nothing to change in the configuration.
                self.assertEqual(env, conf["Environment"]["Variables"])
                self.assertIn(f"# {key}: function {name}, architecture arm64,", self.result.stdout)
                # Only these flags: none that would change the SAM-managed configuration.
                self.assertLessEqual(set(pairs), {"--region", "--binary-name", "--iam-role",
                                                  "--env-file", "--description"})
                if "--description" in pairs:
                    self.assertTrue(pairs["--description"].startswith("hookvault "))

    def test_values_with_commas_go_through_the_env_file_intact(self):
        _, env = self.deploys["rotator"]
        self.assertEqual(env["MANAGED_SECRET_IDS"].count(","), 1)
        _, env = self.deploys["archiver"]
        self.assertIn(",", env["DOWNLOAD_ALLOWED_HOSTS"])
        self.assertNotIn("--env-var", self.result.stdout)


class Options(Run, unittest.TestCase):
    def test_one_function(self):
        r = self.script("--function", "api")
        self.assertEqual(r.returncode, 0, r.stderr)
        build, deploys = parse_plan(r.stdout)
        self.assertEqual(build[-2:], ["--bin", "api"])
        self.assertEqual(build.count("--bin"), 1)
        self.assertEqual(list(deploys), ["api"])

    def test_offline_never_runs_aws_or_cargo(self):
        with tempfile.TemporaryDirectory() as d:
            marker = Path(d) / "called"
            for tool in ("aws", "cargo"):
                fake = Path(d) / tool
                fake.write_text(f"#!/bin/sh\necho {tool} >> {marker}\nexit 99\n")
                fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
            r = self.script(path=f"{d}:{os.environ['PATH']}")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertFalse(marker.exists(), marker.read_text() if marker.exists() else "")

    def test_no_build_checks_the_binaries_are_arm64(self):
        def elf(machine):
            # A 64-bit little-endian ELF header: e_machine at offset 18.
            return b"\x7fELF\x02\x01\x01" + b"\x00" * 11 + machine.to_bytes(2, "little") + b"\x00" * 44

        with tempfile.TemporaryDirectory() as d:
            for binary, machine in (("archiver", 0xB7), ("rotator", 0x3E), ("api", 0xB7)):
                (Path(d) / "lambda" / binary).mkdir(parents=True)
                (Path(d) / "lambda" / binary / "bootstrap").write_bytes(elf(machine))
            r = self.script("--no-build", "--function", "archiver", "--function", "api",
                         env={"CARGO_TARGET_DIR": d})
            self.assertEqual(r.returncode, 0, r.stderr)
            build, deploys = parse_plan(r.stdout)
            self.assertIsNone(build)
            self.assertEqual(sorted(deploys), ["api", "archiver"])
            r = self.script("--no-build", env={"CARGO_TARGET_DIR": d})
            self.refused(r, "lambda/rotator/bootstrap is x86_64, not arm64")

    def test_stack_and_outputs_file_are_exclusive_and_config_dir_is_needed(self):
        r = self.script("--stack", "hookvault-dev")
        self.assertEqual(r.returncode, 2)
        self.assertIn("not allowed with argument", r.stderr)
        r = self.script("--outputs-file", str(OUTPUTS), outputs_file=None)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--outputs-file needs --config-dir", r.stderr)


class Refusals(Run, unittest.TestCase):
    def test_a_missing_output_is_named(self):
        needed = ["Region"] + [o for _, n, r, _, _ in FUNCTIONS.values() for o in (n, r)]
        for key in needed:
            with self.subTest(output=key), tempfile.TemporaryDirectory() as d:
                def drop(stack, key=key):
                    stack["Outputs"] = [o for o in stack["Outputs"] if o["OutputKey"] != key]
                out, conf = self.broken_copy(d, mutate_outputs=drop)
                r = self.script(outputs_file=out, config_dir=conf)
                self.refused(r, f"stack hookvault-dev has no output {key} (")

    def test_an_output_of_a_function_not_deployed_is_not_needed(self):
        with tempfile.TemporaryDirectory() as d:
            def drop(stack):
                stack["Outputs"] = [o for o in stack["Outputs"] if o["OutputKey"] != "ArchiverRoleArn"]
            out, conf = self.broken_copy(d, mutate_outputs=drop)
            r = self.script("--function", "api", outputs_file=out, config_dir=conf)
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_a_role_changed_outside_the_stack(self):
        with tempfile.TemporaryDirectory() as d:
            def other_role(conf):
                if conf["FunctionName"] == "hookvault-dev-rotator":
                    conf["Role"] = "arn:aws:iam::123456789012:role/someone-elses"
            out, conf = self.broken_copy(d, mutate_configs=other_role)
            r = self.script(outputs_file=out, config_dir=conf)
            self.refused(r, "rotator: function hookvault-dev-rotator runs as "
                         "arn:aws:iam::123456789012:role/someone-elses, not as the stack's RotatorRoleArn")

    def test_a_function_that_is_not_arm64(self):
        with tempfile.TemporaryDirectory() as d:
            def x86(conf):
                conf["Architectures"] = ["x86_64"]
            out, conf = self.broken_copy(d, mutate_configs=x86)
            r = self.script("--function", "api", outputs_file=out, config_dir=conf)
            self.refused(r, "api: function hookvault-dev-api is x86_64, not arm64")

    def test_a_value_the_env_file_cannot_carry(self):
        for bad in ("it's", "a\\nb", "two\nlines"):
            with self.subTest(value=bad), tempfile.TemporaryDirectory() as d:
                def quote(conf, bad=bad):
                    conf["Environment"]["Variables"]["RUST_LOG"] = bad
                out, conf = self.broken_copy(d, mutate_configs=quote)
                r = self.script(outputs_file=out, config_dir=conf)
                self.refused(r, "archiver: the value of RUST_LOG contains")
                self.assertNotIn(bad, r.stderr)

    def test_a_stack_being_changed(self):
        with tempfile.TemporaryDirectory() as d:
            def busy(stack):
                stack["StackStatus"] = "UPDATE_IN_PROGRESS"
            out, conf = self.broken_copy(d, mutate_outputs=busy)
            r = self.script(outputs_file=out, config_dir=conf)
            self.refused(r, "stack hookvault-dev is UPDATE_IN_PROGRESS")

    def test_a_missing_function_configuration_is_named(self):
        with tempfile.TemporaryDirectory() as d:
            out, conf = self.broken_copy(d)
            (conf / "hookvault-dev-api.json").unlink()
            r = self.script(outputs_file=out, config_dir=conf)
            self.refused(r, "hookvault-dev-api.json: no such file")


class TheTemplateAndTheFixtures(unittest.TestCase):
    """The outputs the script reads exist in the template, and the fixtures look like a stack
    made from it (same outputs, same environment variable names)."""

    @classmethod
    def setUpClass(cls):
        cls.template = ct.load(ct.DEFAULT_TEMPLATE)

    def test_the_template_has_the_outputs_the_script_reads(self):
        tmpl_outputs = self.template["Outputs"]
        self.assertEqual(tmpl_outputs["Region"]["Value"], {"Ref": "AWS::Region"})
        for key, (_, name_output, role_output, function, role) in FUNCTIONS.items():
            with self.subTest(function=key):
                self.assertEqual(tmpl_outputs[name_output]["Value"], {"Ref": function})
                self.assertEqual(tmpl_outputs[role_output]["Value"], {"Fn::GetAtt": [role, "Arn"]})
                self.assertEqual(self.template["Resources"][function]["Properties"]["Role"],
                                 {"Fn::GetAtt": [role, "Arn"]})

    def test_the_fixture_has_every_output_of_the_template(self):
        self.assertEqual(set(outputs()), set(self.template["Outputs"]))

    def test_the_fixture_environments_are_the_templates(self):
        out = outputs()
        for key, (_, name_output, _, function, _) in FUNCTIONS.items():
            with self.subTest(function=key):
                props = self.template["Resources"][function]["Properties"]
                self.assertEqual(set(config(out[name_output])["Environment"]["Variables"]),
                                 set(props["Environment"]["Variables"]))
                self.assertEqual(config(out[name_output])["Timeout"], props["Timeout"])
                self.assertEqual(config(out[name_output])["MemorySize"], props["MemorySize"])


if __name__ == "__main__":
    unittest.main()
