"""Run the fuzz targets with atheris (libFuzzer for Python), each for a bounded time.

    python -m fuzz.run                      # every target, 60 s each
    python -m fuzz.run --seconds 300 selector

Each target starts from its seed corpus (fuzz/corpus/TARGET, never written to) plus a scratch
corpus in a temporary directory; an input that breaks the target's oracle (fuzz/targets.py) is
written to fuzz/findings/TARGET/ and the run exits non-zero. Copy a finding into
tests/hardening/test_fuzz_regressions.py once it is fixed (or leave the file there: the
regression tests replay every file under fuzz/findings/ too).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
FINDINGS = HERE / "findings"
DEFAULT_SECONDS = 60
TARGET_NAMES = ("manifests", "config", "selector")
# Bounded inputs keep each execution fast; the loaders' own limits are tested elsewhere.
MAX_INPUT_BYTES = 16384
PER_INPUT_TIMEOUT_SECONDS = 10
RSS_LIMIT_MB = 2048


def _fuzz_one_target(name: str, libfuzzer_args: list[str]) -> None:
    """In a child process: instrument guardrail's modules, then hand over to libFuzzer."""
    import atheris  # type: ignore[import-not-found,import-untyped,unused-ignore]  # noqa: PLC0415

    with atheris.instrument_imports(include=["webhook"]):
        from fuzz.targets import TARGETS  # noqa: PLC0415 - atheris must instrument the targets as they are imported

    target = TARGETS[name]
    atheris.Setup([sys.argv[0], *libfuzzer_args], target)
    atheris.Fuzz()


def _run_target(name: str, seconds: int) -> int:
    findings = FINDINGS / name
    findings.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"guardrail-fuzz-{name}-") as scratch:
        args = [
            scratch,
            str(CORPUS / name),
            f"-max_total_time={seconds}",
            f"-max_len={MAX_INPUT_BYTES}",
            f"-timeout={PER_INPUT_TIMEOUT_SECONDS}",
            f"-rss_limit_mb={RSS_LIMIT_MB}",
            f"-artifact_prefix={findings}/",
            "-print_final_stats=1",
        ]
        print(f"== fuzz {name}: {seconds} s, seeds {CORPUS / name}", flush=True)
        done = subprocess.run(  # noqa: S603 - this interpreter, this module, fixed arguments
            [sys.executable, "-m", "fuzz.run", "--child", name, "--", *args],
            cwd=HERE.parent,
            check=False,
        )
    print(f"== fuzz {name}: exit {done.returncode}", flush=True)
    return done.returncode


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        # `--child NAME -- LIBFUZZER_ARGS...`, from _run_target.
        _fuzz_one_target(argv[1], argv[3:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("targets", nargs="*", metavar="TARGET", help=", ".join(TARGET_NAMES))
    parser.add_argument("--seconds", type=int, default=DEFAULT_SECONDS)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.targets) - set(TARGET_NAMES))
    if unknown:
        choices = ", ".join(TARGET_NAMES)
        parser.error(f"unknown target(s) {', '.join(unknown)}; choose from {choices}")
    failed = [name for name in args.targets or TARGET_NAMES if _run_target(name, args.seconds)]
    if failed:
        print(f"findings in: {', '.join(failed)} (see {FINDINGS})", file=sys.stderr)
        return 1
    print("no findings", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
