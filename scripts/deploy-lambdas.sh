#!/usr/bin/env bash
# Ships the Lambdas' code to a stack made from infra/template.yaml with `cargo lambda deploy`,
# with no ARN copied by hand (docs/deploy.md, "Deploying with cargo-lambda"):
#
#   scripts/deploy-lambdas.sh --stack hookvault-dev                     # build, then deploy all five
#   scripts/deploy-lambdas.sh --stack hookvault-dev --function api --dry-run
#   scripts/deploy-lambdas.sh --outputs-file infra/fixtures/describe-stacks.hookvault-dev.json \
#                             --config-dir infra/fixtures/function-configuration   # offline: print only
#
# For each function it reads the stack's outputs (its name, its execution role; `aws
# cloudformation describe-stacks`) and the function's configuration as it is now (`aws lambda
# get-function-configuration`). It refuses when they disagree with what the code update
# needs (the function's role is not the stack's, its architecture is not arm64, the binary
# is not arm64), then runs `cargo lambda build --release --arm64` and
#
#   cargo lambda deploy --region R --binary-name BIN --iam-role ROLE --env-file FILE NAME
#
# with the role and the environment the function already has. cargo-lambda (1.9.2, the
# version scripts/lib/tools.sh pins) updates a configuration field of an existing function
# only when a flag for it is given and differs from the live value, so this changes the code
# only: the configuration stays the template's, as `sam deploy` set it. The environment goes
# through --env-file, never --env-var, which splits values at commas.
#
# --dry-run prints the commands as a bash script instead of running them; with
# --outputs-file and --config-dir (saved `describe-stacks` and `get-function-configuration`
# output) nothing reaches AWS and the commands are only printed. scripts/check-infra.sh
# checks that output (infra/test_deploy_lambdas.py). AWS credentials come from the standard
# chain (AWS_PROFILE, ...), used by the AWS CLI and cargo-lambda; this script never reads or
# prints them.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh
export AWS_PAGER=""

exec python3 - "$@" <<'PY'
import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROG = "scripts/deploy-lambdas.sh"

# Each function: its binary (the [[bin]] name, target/lambda/<bin>/bootstrap) and the stack
# outputs that name it and its execution role (infra/template.yaml, Outputs).
FUNCTIONS = {
    "archiver": {"binary": "archiver", "name": "ArchiverFunctionName", "role": "ArchiverRoleArn"},
    "rotator": {"binary": "rotator", "name": "RotatorFunctionName", "role": "RotatorRoleArn"},
    "api": {"binary": "api", "name": "ApiFunctionName", "role": "ApiRoleArn"},
    "drainer": {"binary": "drainer", "name": "DrainerFunctionName", "role": "DrainerRoleArn"},
    "reconciler": {"binary": "reconciler", "name": "ReconcilerFunctionName", "role": "ReconcilerRoleArn"},
}
ARCHITECTURE = "arm64"  # infra/template.yaml, Globals; cargo lambda build --arm64
RUNTIME = "provided.al2023"  # the template's runtime, and cargo-lambda's default
# A stack in any other state is being changed, failed, or has no functions.
STABLE = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE",
          "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"}
ELF_MACHINES = {0xB7: "arm64", 0x3E: "x86_64"}


class Refused(Exception):
    """A precondition failed; the message says which and what to do."""


def parse_args():
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Ship the Lambdas' code to a stack made from infra/template.yaml with "
        "`cargo lambda deploy` (docs/deploy.md, \"Deploying with cargo-lambda\").",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--stack", help="the stack's name (hookvault-dev, hookvault-prod)")
    src.add_argument("--outputs-file", type=Path,
                     help="offline: a saved `aws cloudformation describe-stacks --output json`; "
                     "only prints the commands")
    p.add_argument("--config-dir", type=Path,
                   help="offline: a folder of saved `aws lambda get-function-configuration "
                   "--output json`, one <FunctionName>.json per function")
    p.add_argument("--region", help="the stack's region, if not the AWS CLI's default")
    p.add_argument("--function", action="append", choices=list(FUNCTIONS), dest="functions",
                   help="deploy only this function (repeatable; default: all five)")
    p.add_argument("--no-build", action="store_true",
                   help="deploy target/lambda/<bin>/bootstrap as it is (built with "
                   "`cargo lambda build --release --arm64`, e.g. by scripts/build-lambdas.sh)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the commands as a bash script instead of running them")
    args = p.parse_args()
    if args.outputs_file is not None and args.config_dir is None:
        p.error("--outputs-file needs --config-dir")
    if args.config_dir is not None and args.outputs_file is None:
        p.error("--config-dir goes with --outputs-file (with --stack the configuration is read from AWS)")
    if args.outputs_file is not None and args.region:
        p.error("--region is for --stack (offline, the region is the stack's Region output)")
    wanted = set(args.functions or FUNCTIONS)
    args.functions = [f for f in FUNCTIONS if f in wanted]
    return args


def aws(*argv):
    """Runs a read-only AWS CLI call and returns its JSON."""
    if shutil.which("aws") is None:
        raise Refused("the AWS CLI (aws) is not on PATH; install AWS CLI v2 (docs/deploy.md, section 1)")
    cmd = ["aws", *argv, "--output", "json"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise Refused(f"`{shlex.join(cmd)}` failed: {r.stderr.strip()}")
    return json.loads(r.stdout)


def read_json(path, what):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise Refused(f"{path}: no such file ({what})") from None
    except json.JSONDecodeError as e:
        raise Refused(f"{path}: not JSON ({what}): {e}") from None


class Live:
    def __init__(self, stack, region):
        self.stack, self.region = stack, region

    def describe_stack(self):
        argv = ["cloudformation", "describe-stacks", "--stack-name", self.stack]
        if self.region:
            argv += ["--region", self.region]
        return aws(*argv)

    def function_configuration(self, name, region):
        return aws("lambda", "get-function-configuration", "--function-name", name,
                   "--region", region)


class Saved:
    def __init__(self, outputs_file, config_dir):
        self.outputs_file, self.config_dir = outputs_file, config_dir

    def describe_stack(self):
        return read_json(self.outputs_file, "saved `aws cloudformation describe-stacks` output")

    def function_configuration(self, name, region):
        return read_json(self.config_dir / f"{name}.json",
                         f"saved `aws lambda get-function-configuration --function-name {name}` output")


def stack_outputs(described, label):
    stacks = described.get("Stacks") or []
    if len(stacks) != 1:
        raise Refused(f"{label}: expected one stack in the describe-stacks output, found {len(stacks)}")
    stack = stacks[0]
    name = stack.get("StackName", label)
    status = stack.get("StackStatus", "")
    if status not in STABLE:
        raise Refused(f"stack {name} is {status or 'in an unknown state'}: deploy code only to a "
                      f"stack in {', '.join(sorted(STABLE))} (wait for `sam deploy` to finish, "
                      "or fix the stack first)")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}
    return name, status, outputs


def need(outputs, stack, key, what):
    value = outputs.get(key)
    if not value:
        raise Refused(f"stack {stack} has no output {key} ({what}): it was deployed from an older "
                      "infra/template.yaml; run `sam build && sam deploy` with the current template "
                      "once, then run this again")
    return value


def env_file_text(function, env):
    """The environment as cargo-lambda's --env-file reads it (the env-file-reader crate):
    KEY='VALUE' lines. Inside single quotes everything is kept (commas, spaces, #, =, ")
    except a single quote, which ends the value, and the two characters backslash-n, which
    become a newline; so those, a backslash and line breaks are refused."""
    lines = []
    for key in sorted(env):
        value = env[key]
        if not key or not (key[0].isascii() and key[0].isalpha()) or not all(
                c.isascii() and (c.isalnum() or c == "_") for c in key):
            raise Refused(f"{function}: environment variable name {key!r} cannot go into an env file")
        bad = [c for c in ("'", "\\", "\n", "\r") if c in value]
        if bad:
            raise Refused(f"{function}: the value of {key} contains {bad[0]!r}, which cargo-lambda's "
                          "--env-file cannot carry; ship this function with `sam build && sam deploy`")
        lines.append(f"{key}='{value}'")
    return "".join(line + "\n" for line in lines)


def plan(source, functions):
    described = source.describe_stack()
    label = getattr(source, "stack", None) or str(getattr(source, "outputs_file", "stack"))
    stack, status, outputs = stack_outputs(described, label)
    region = need(outputs, stack, "Region", "the stack's region")
    steps = []
    for key in functions:
        spec = FUNCTIONS[key]
        name = need(outputs, stack, spec["name"], f"the {key} function's name")
        role = need(outputs, stack, spec["role"], f"the {key} function's execution role")
        conf = source.function_configuration(name, region)
        if conf.get("FunctionName") != name:
            raise Refused(f"{key}: the configuration read is {conf.get('FunctionName')!r}'s, not {name}'s")
        # Changed outside the stack: `sam deploy` does not undo that while the template's value
        # stays the same, so the messages say how to put the stack's value back.
        if conf.get("Role") != role:
            raise Refused(f"{key}: function {name} runs as {conf.get('Role')}, not as the stack's "
                          f"{spec['role']} {role}: it was changed outside the stack; put it back "
                          f"with `aws lambda update-function-configuration --function-name {name} "
                          f"--role {role}` (`aws cloudformation detect-stack-drift` shows what "
                          "else changed)")
        arch = conf.get("Architectures") or ["x86_64"]  # Lambda's default when absent
        if arch != [ARCHITECTURE]:
            raise Refused(f"{key}: function {name} is {','.join(arch)}, not {ARCHITECTURE}: "
                          "it was changed outside the stack, and `cargo lambda deploy` keeps an "
                          f"existing function's architecture while the binary is {ARCHITECTURE}; "
                          f"put the function back to {ARCHITECTURE} first (`aws lambda "
                          f"update-function-code --architectures {ARCHITECTURE} ...`)")
        if conf.get("Runtime") != RUNTIME:
            raise Refused(f"{key}: function {name} has runtime {conf.get('Runtime')}, not {RUNTIME}: "
                          "it was changed outside the stack; put it back with `aws lambda "
                          f"update-function-configuration --function-name {name} --runtime {RUNTIME}`")
        env = (conf.get("Environment") or {}).get("Variables") or {}
        steps.append({"key": key, "binary": spec["binary"], "name": name, "role": role,
                      "role_output": spec["role"], "env": env,
                      "env_text": env_file_text(key, env)})
    return stack, status, region, steps


def description():
    """The version description: which commit this is (cargo lambda deploy publishes a version)."""
    try:
        r = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"],
                           capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    rev = r.stdout.strip()
    return f"hookvault {rev} (cargo lambda deploy)" if r.returncode == 0 and rev else None


def build_command(steps):
    cmd = ["cargo", "lambda", "build", "--release", "--arm64", "--locked"]
    for s in steps:
        cmd += ["--bin", s["binary"]]
    return cmd


def deploy_command(region, step, env_file, desc):
    cmd = ["cargo", "lambda", "deploy", "--region", region, "--binary-name", step["binary"],
           "--iam-role", step["role"]]
    if step["env"]:
        cmd += ["--env-file", env_file]
    if desc:
        cmd += ["--description", desc]
    return cmd + [step["name"]]


def target_dir():
    return Path(os.environ.get("CARGO_TARGET_DIR") or "target")


def check_binary(step):
    """cargo-lambda reads the architecture from the binary only when it creates a function;
    an update keeps the function's (arm64), so an x86_64 bootstrap would not start."""
    path = target_dir() / "lambda" / step["binary"] / "bootstrap"
    try:
        head = path.read_bytes()[:20]
    except FileNotFoundError:
        raise Refused(f"{path}: not built; run `cargo lambda build --release --arm64 "
                      f"--bin {step['binary']}` (or drop --no-build)") from None
    if len(head) < 20 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
        raise Refused(f"{path}: not a 64-bit little-endian ELF binary")
    machine = int.from_bytes(head[18:20], "little")
    arch = ELF_MACHINES.get(machine, hex(machine))
    if arch != ARCHITECTURE:
        raise Refused(f"{path} is {arch}, not {ARCHITECTURE}: build it with "
                      "`cargo lambda build --release --arm64`")
    return path


def print_plan(stack, status, region, steps, build, desc):
    q = shlex.quote
    out = [
        "#!/usr/bin/env bash",
        f"# {PROG}: stack {stack} ({status}) in {region}; functions: "
        + " ".join(s["key"] for s in steps),
        "# Each `cargo lambda deploy` updates the code of a function the stack made and publishes a",
        "# version. It is given the role and the environment the function has now, so cargo-lambda",
        "# updates no configuration (it sends only what differs from the live function).",
        "set -euo pipefail",
    ]
    if build:
        out.append(shlex.join(build_command(steps)))
    else:
        out.append("# --no-build: deploys target/lambda/<bin>/bootstrap as built (checked: arm64)")
    out += ['envdir="$(mktemp -d)"', "trap 'rm -rf \"$envdir\"' EXIT"]
    for s in steps:
        env_ref = f"$envdir/{s['binary']}.env"
        cmd = deploy_command(region, s, env_ref, desc)
        shown = " ".join('"' + a + '"' if a == env_ref else q(a) for a in cmd)
        out += [
            "",
            f"# {s['key']}: function {s['name']}, architecture {ARCHITECTURE}, role = output "
            f"{s['role_output']}, {len(s['env'])} environment variables as the function has them",
        ]
        if s["env"]:
            out += [f"cat > \"{env_ref}\" <<'ENV'", s["env_text"].rstrip("\n"), "ENV"]
        out.append(shown)
    print("\n".join(out))


def run(cmd):
    print("+ " + shlex.join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True)


def main():
    args = parse_args()
    offline = args.outputs_file is not None
    source = Saved(args.outputs_file, args.config_dir) if offline else Live(args.stack, args.region)
    desc = description()

    stack, status, region, steps = plan(source, args.functions)
    if args.no_build:
        for s in steps:
            check_binary(s)
    if offline or args.dry_run:
        print_plan(stack, status, region, steps, not args.no_build, desc)
        return

    # The pinned cargo-lambda (and zig, its cross linker) and the arm64 Rust target.
    run(["bash", "-c", "source scripts/lib/tools.sh && hv_cargo_lambda && "
         "hv_rust_target aarch64-unknown-linux-gnu"])
    if not args.no_build:
        run(build_command(steps))
        for s in steps:
            check_binary(s)
        # The build takes minutes: read the stack and the functions again, so what is passed is
        # what they have now (a `sam deploy` may have run meanwhile).
        stack, status, region, steps = plan(source, args.functions)

    done = []
    with tempfile.TemporaryDirectory(prefix="hookvault-deploy-") as envdir:
        for s in steps:
            env_file = Path(envdir) / f"{s['binary']}.env"
            env_file.write_text(s["env_text"])
            env_file.chmod(0o600)
            try:
                run(deploy_command(region, s, str(env_file), desc))
            except subprocess.CalledProcessError:
                left = [x["key"] for x in steps if x["key"] not in done and x is not s]
                raise Refused(f"`cargo lambda deploy` failed for {s['key']} ({s['name']}); deployed: "
                              f"{', '.join(done) or 'none'}; not attempted: {', '.join(left) or 'none'}")
            done.append(s["key"])
    print(f"{PROG}: deployed {', '.join(done)} to stack {stack} ({region})", file=sys.stderr)


try:
    main()
except Refused as e:
    print(f"{PROG}: {e}", file=sys.stderr)
    sys.exit(1)
PY
