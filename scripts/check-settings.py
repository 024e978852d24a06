#!/usr/bin/env python3
"""Every documented setting is read and tested (issue #25).

For each config table (the `| `NAME` |` rows of the module docs of edge/src/config.rs and
functions/*/src/config.rs) and each `env = "NAME"` of the CLI:

1. the variable is read by the code: its name appears as a string literal in the crate's
   source outside doc comments; and when the parser stores it in a struct field
   (`field: parse("NAME", …)`), that field is used somewhere outside config.rs (a setting
   parsed and never read, as CLAIM_CHECK_TIMEOUT_MS once was, fails here);
2. the variable is named by at least one test: its name appears in a test file (any file
   under a `tests` folder, a `tests.rs`, or after `#[cfg(test)]` in a source file).

Exits 1 listing every setting that fails, 0 otherwise. Run by scripts/test.sh; an
optional argument names another tree to check (scripts/test_check_settings.py).
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
CONFIGS = [c for c in [ROOT / "edge/src/config.rs"] if c.exists()] + sorted(
    ROOT.glob("functions/*/src/config.rs")
)
ROW = re.compile(r"^//! \|((?:\s*`[A-Z][A-Z0-9_]+`\s*,?)+)\|")
NAME = re.compile(r"`([A-Z][A-Z0-9_]+)`")
FIELD = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s*:")


def rust_files(folder):
    return [p for p in folder.rglob("*.rs") if "target" not in p.parts]


def code_lines(path):
    """The file's lines that are not comments."""
    out = []
    for line in path.read_text().splitlines():
        s = line.strip()
        if s.startswith("//"):
            continue
        out.append(line)
    return out


def test_text(path):
    """The part of a file that is test code."""
    text = path.read_text()
    if "tests" in path.relative_to(ROOT).parts or path.name == "tests.rs":
        return text
    i = text.find("#[cfg(test)]")
    return text[i:] if i >= 0 else ""


def all_test_text():
    files = [p for p in ROOT.rglob("*.rs") if "target" not in p.parts and ".tools" not in p.parts]
    return "\n".join(test_text(p) for p in files)


def documented(config):
    names = []
    for line in config.read_text().splitlines():
        m = ROW.match(line)
        if m:
            names.extend(NAME.findall(m.group(1)))
    return names


def field_of(lines, i):
    """The struct field a parser line stores into: the line itself, or the nearest
    earlier line of the same expression (up to 3 back) that opens with `field:`."""
    for j in range(i, max(i - 4, -1), -1):
        m = FIELD.match(lines[j])
        if m:
            return m.group(1)
        if lines[j].rstrip().endswith((";", "{")) and j != i:
            return None
    return None


def check_crate(config, tests, problems):
    crate_src = config.parent
    sources = [p for p in rust_files(crate_src)]
    if "functions" in config.relative_to(ROOT).parts:
        # The Lambdas share functions/aws (logging, metrics, clients): a setting may be
        # read there.
        sources += rust_files(ROOT / "functions/aws/src")
    for name in documented(config):
        literal = f'"{name}"'
        readers = []
        for p in sources:
            lines = code_lines(p)
            for i, line in enumerate(lines):
                if literal in line:
                    readers.append((p, lines, i))
        if not readers:
            problems.append(f"{config.relative_to(ROOT)}: {name} is documented but never read")
            continue
        for p, lines, i in readers:
            if p != config:
                continue
            field = field_of(lines, i)
            if field is None:
                continue
            use = re.compile(r"\." + re.escape(field) + r"\b")
            used = any(
                use.search(q.read_text())
                for q in rust_files(ROOT)
                if q != config and "target" not in q.parts and ".tools" not in q.parts
            ) or any(use.search(l) for l in lines if not FIELD.match(l))
            if not used:
                problems.append(
                    f"{config.relative_to(ROOT)}: {name} is parsed into `{field}`, which nothing reads"
                )
        if name not in tests:
            problems.append(f"{config.relative_to(ROOT)}: {name} is named by no test")


def check_cli(tests, problems):
    if not (ROOT / "cli/src").exists():
        return
    for p in rust_files(ROOT / "cli/src"):
        for name in re.findall(r'env\s*=\s*"([A-Z][A-Z0-9_]+)"', p.read_text()):
            if name not in tests:
                problems.append(f"{p.relative_to(ROOT)}: {name} (a CLI setting) is named by no test")


def main():
    tests = all_test_text()
    problems = []
    for config in CONFIGS:
        check_crate(config, tests, problems)
    check_cli(tests, problems)
    count = sum(len(documented(c)) for c in CONFIGS)
    problems = list(dict.fromkeys(problems))
    if problems:
        print("check-settings: every documented setting must be read and named by a test:")
        for p in problems:
            print("  " + p)
        sys.exit(1)
    print(f"check-settings: {count} documented settings, each read and named by a test")


if __name__ == "__main__":
    main()
