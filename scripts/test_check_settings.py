"""The settings check fails on what it exists to catch: python3 -m unittest scripts/test_check_settings.py"""
import pathlib
import subprocess
import sys
import tempfile
import unittest

CHECK = pathlib.Path(__file__).resolve().parent / "check-settings.py"

CONFIG = '''//! | variable | default | meaning |
//! |---|---|---|
//! | `FOO_TIMEOUT_MS` | 5 | a timeout |
pub struct Config { pub foo_timeout_ms: u64 }
impl Config {
    pub fn from_env() -> Config {
        Config {
            foo_timeout_ms: env::number("FOO_TIMEOUT_MS", 5),
        }
    }
}
'''


def run(tree):
    return subprocess.run([sys.executable, str(CHECK), str(tree)], capture_output=True, text=True)


def make(tree, reader, test):
    src = tree / "functions/demo/src"
    src.mkdir(parents=True)
    (src / "config.rs").write_text(CONFIG)
    (src / "lib.rs").write_text(reader)
    tests = tree / "functions/demo/tests"
    tests.mkdir()
    (tests / "settings.rs").write_text(test)


class CheckSettings(unittest.TestCase):
    def test_a_setting_parsed_and_never_read_fails(self):
        with tempfile.TemporaryDirectory() as d:
            make(pathlib.Path(d), "pub fn f() {}\n", 'set("FOO_TIMEOUT_MS")\n')
            out = run(d)
            self.assertEqual(out.returncode, 1, out.stdout)
            self.assertIn("FOO_TIMEOUT_MS is parsed into `foo_timeout_ms`, which nothing reads", out.stdout)

    def test_a_setting_no_test_names_fails(self):
        with tempfile.TemporaryDirectory() as d:
            make(pathlib.Path(d), "fn f(c: &Config) { c.foo_timeout_ms; }\n", "// nothing\n")
            out = run(d)
            self.assertEqual(out.returncode, 1, out.stdout)
            self.assertIn("FOO_TIMEOUT_MS is named by no test", out.stdout)

    def test_a_setting_read_and_tested_passes(self):
        with tempfile.TemporaryDirectory() as d:
            make(pathlib.Path(d), "fn f(c: &Config) { c.foo_timeout_ms; }\n", 'set("FOO_TIMEOUT_MS")\n')
            out = run(d)
            self.assertEqual(out.returncode, 0, out.stdout)


if __name__ == "__main__":
    unittest.main()
