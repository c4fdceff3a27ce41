"""The `guardrail` command: thin click commands over library functions.

Each command parses its flags, calls the library and maps the result to an exit code:
0 fine, 1 an enforce-mode violation or a denial, 2 bad input (`where: what` on stderr).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml

from webhook import __version__, logs
from webhook.config import OWN_NAMESPACE, Config, load_config
from webhook.policy.errors import GuardrailError

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_BAD_INPUT = 2
FORMATS = ("text", "json", "sarif", "junit", "policyreport", "html")


def _own_namespace() -> str | None:
    # Set by the Deployment through the downward API; exempts guardrail's own namespace.
    return os.environ.get("POD_NAMESPACE") or None


def _load_config(path: str | None) -> Config:
    with bad_input():
        return load_config(path, own_namespace=_own_namespace())


@contextlib.contextmanager
def bad_input(prefix: str = "guardrail: ") -> Iterator[None]:
    """Turn the user's input's fault (GuardrailError) into `where: what` on stderr, exit 2."""
    try:
        yield
    except GuardrailError as exc:
        click.echo(f"{prefix}{exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)


# Options several commands share, spelled and explained once.
F = TypeVar("F", bound=Callable[..., Any])


def config_option(command: F) -> F:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        help="Config YAML (default: every default, see the README's Configuration).",
    )(command)


def format_option(command: F) -> F:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS, case_sensitive=False),
        default="text",
        show_default=True,
        help="How to print the findings (any case).",
    )(command)


def _policy_ids(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> frozenset[str]:
    """`--only a,b --only c`: every id must be a policy's (a typo would silently judge all)."""
    from webhook.policy import RULE_IDS  # noqa: PLC0415 - only when the flag is given

    ids = [part.strip() for value in values for part in value.split(",") if part.strip()]
    for policy_id in ids:
        if policy_id not in RULE_IDS:
            raise click.BadParameter(
                f"unknown policy {policy_id!r} (expected one of {', '.join(RULE_IDS)})",
                ctx,
                param,
            )
    return frozenset(ids)


def selection_options(command: F) -> F:
    """--only, --skip, --fail-on and --quiet, which check and audit share."""
    for decorate in reversed(
        (
            click.option(
                "--only",
                multiple=True,
                callback=_policy_ids,
                metavar="POLICY[,POLICY]",
                help="Report only these policies (repeat or comma-separate).",
            ),
            click.option(
                "--skip",
                multiple=True,
                callback=_policy_ids,
                metavar="POLICY[,POLICY]",
                help="Do not report these policies (repeat or comma-separate).",
            ),
            click.option(
                "--fail-on",
                type=click.Choice(["enforce", "warn"], case_sensitive=False),
                default="enforce",
                show_default=True,
                help="Exit 1 on errors (enforce) or on errors and warnings (warn).",
            ),
            click.option(
                "--quiet",
                "-q",
                is_flag=True,
                help="Text format: print only the summary (counts by policy and level).",
            ),
        )
    ):
        command = decorate(command)
    return command


def text_or_json_option(help_text: str) -> Callable[[F], F]:
    """`--format text|json`, for the commands that print their own result (test, explain)."""

    def decorate(command: F) -> F:
        return click.option(
            "--format",
            "fmt",
            type=click.Choice(["text", "json"], case_sensitive=False),
            default="text",
            show_default=True,
            help=help_text,
        )(command)

    return decorate


def kubeconfig_option(purpose: str) -> Callable[[F], F]:
    def decorate(command: F) -> F:
        return click.option(
            "--kubeconfig",
            type=click.Path(dir_okay=False),
            help=f"Kubeconfig{purpose} (default: in-cluster, then $KUBECONFIG, ~/.kube/config).",
        )(command)

    return decorate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="guardrail")
def main() -> None:
    """Guardrail: network-security guardrails for Kubernetes, as an admission webhook."""
    # Warnings of every command as `guardrail: warning: ...`; `serve` installs its own log.
    logs.configure_cli_logging()


@main.command()
@config_option
@click.option(
    "--state",
    "state_path",
    type=click.Path(exists=True),
    help="Read cluster state from these manifests instead of the API server.",
)
@click.option(
    "--cert-dir",
    default="certs",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory with tls.crt and tls.key (generated when missing).",
)
@click.option("--bind", default="0.0.0.0:8443", show_default=True, help="HOST:PORT to listen on.")
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="gunicorn worker processes (they share the state the master read, see --preload).",
)
@click.option(
    "--threads",
    default=8,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Threads per worker that judge reviews.",
)
@kubeconfig_option(" for the live state")
@click.option(
    "--preload/--no-preload",
    default=True,
    show_default=True,
    help="Live state: list the cluster once in the master, shared by every worker (each then "
    "watches for changes); --no-preload: each worker lists and holds its own copy.",
)
@click.option(
    "--client-ca",
    type=click.Path(dir_okay=False),
    help="CA file: /validate then requires a client certificate it signed (the API server's).",
)
@click.option(
    "--certificates",
    type=click.Choice(["files", "self-managed"], case_sensitive=False),
    default="files",
    show_default=True,
    help="files: serve the pair in --cert-dir. self-managed: keep a CA and serving certificate "
    "in the Secret guardrail-tls and the webhooks' caBundle current (in the cluster).",
)
@click.option(
    "--service",
    default="guardrail",
    show_default=True,
    help="The Service the API server calls (the self-managed certificate names it).",
)
@click.option(
    "--cert-secret",
    default="guardrail-tls",
    show_default=True,
    help="Self-managed: the Secret (in guardrail's namespace) that holds the certificates.",
)
@click.option(
    "--webhook-configuration",
    default="guardrail",
    show_default=True,
    help="Self-managed: the ValidatingWebhookConfiguration whose caBundle is kept current.",
)
@click.option(
    "--cert-host",
    "cert_hosts",
    multiple=True,
    help="Self-managed: one more DNS name or IP address in the certificate (repeatable).",
)
@click.option(
    "--cert-validity",
    default="90d",
    show_default=True,
    help="Self-managed serving certificates' validity (s, m, h or d; renewed at a third left).",
)
@click.option(
    "--ca-validity",
    default="3650d",
    show_default=True,
    help="Self-managed CA's validity (renewed at a third left, trusted beside the old one).",
)
@click.option(
    "--log-format",
    type=click.Choice(logs.FORMATS, case_sensitive=False),
    default="auto",
    show_default=True,
    envvar=logs.FORMAT_ENV,
    show_envvar=True,
    help="json: one JSON object per line; text: one readable line per event; "
    "auto: text when stderr is a terminal, else json (as in a pod).",
)
def serve(
    config_path: str | None,
    state_path: str | None,
    cert_dir: str,
    bind: str,
    workers: int,
    threads: int,
    kubeconfig: str | None,
    preload: bool,
    client_ca: str | None,
    certificates: str,
    service: str,
    cert_secret: str,
    webhook_configuration: str,
    cert_hosts: tuple[str, ...],
    cert_validity: str,
    ca_validity: str,
    log_format: str,
) -> None:
    """Serve the admission webhook over TLS (gunicorn, gthread workers).

    \b
    Examples:
      guardrail serve --state examples/state                # no cluster: state from manifests
      guardrail serve --config /etc/guardrail/config.yaml --certificates self-managed
    """
    from webhook import server  # noqa: PLC0415 - keeps `guardrail check` free of gunicorn
    from webhook.selfcerts import Lifetimes  # noqa: PLC0415 - keeps `--help` fast

    try:
        lifetimes = Lifetimes(
            ca=_duration(ca_validity, "--ca-validity"),
            cert=_duration(cert_validity, "--cert-validity"),
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--cert-validity") from exc
    config = _load_config(config_path)

    options = server.ServeOptions(
        config=config,
        config_path=config_path,
        state_path=state_path,
        cert_dir=Path(cert_dir),
        bind=bind,
        workers=workers,
        threads=threads,
        kubeconfig=kubeconfig,
        preload=preload,
        client_ca=Path(client_ca) if client_ca is not None else None,
        certificates=certificates,
        namespace=config.own_namespace,
        service=service,
        lifetimes=lifetimes,
        cert_secret=cert_secret,
        webhook_configuration=webhook_configuration,
        cert_hosts=cert_hosts,
        log_format=log_format,
    )
    with bad_input():
        server.serve(options)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str, flag: str) -> datetime.timedelta:
    """'90d', '12h', '30m', '45s' as a timedelta; a click error naming the flag otherwise."""
    number, unit = text[:-1], text[-1:]
    if unit not in _UNITS or not number.isdigit() or int(number) <= 0:
        raise click.BadParameter(
            f"{text!r} is not a duration like 90d, 12h, 30m or 45s", param_hint=flag
        )
    return datetime.timedelta(seconds=int(number) * _UNITS[unit])


@main.command()
@click.option(
    "--out",
    "out_dir",
    default="certs",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory to write ca.crt, ca.key, tls.crt and tls.key to (the CA is kept if there).",
)
@click.option(
    "--service", default="guardrail", show_default=True, help="The Service the API server calls."
)
@click.option(
    "--namespace",
    default="guardrail-system",
    show_default=True,
    help="The Service's namespace (guardrail's own).",
)
@click.option("--host", "hosts", multiple=True, help="Extra DNS name or IP address (repeatable).")
@click.option(
    "--days",
    default=365,
    show_default=True,
    type=click.IntRange(1, 3650),
    help="Validity of the serving certificate.",
)
def certs(out_dir: str, service: str, namespace: str, hosts: tuple[str, ...], days: int) -> None:
    """Write a CA and an ECDSA P-256 serving certificate; print the base64 caBundle.

    \b
    Examples:
      guardrail certs --out certs --host 127.0.0.1
      guardrail certs --out tls --namespace platform --days 90
    """
    from webhook import certs as certs_lib  # noqa: PLC0415 - each command imports only what it runs, so `--help` stays fast

    with bad_input():
        bundle = certs_lib.write_certificates(
            Path(out_dir), service=service, namespace=namespace, hosts=hosts, days=days
        )
    click.echo(bundle.ca_bundle)


@main.command()
@config_option
@format_option
@click.option("--cluster", is_flag=True, help="Add the live cluster's namespaces and policies.")
@kubeconfig_option(" for --cluster")
@click.option(
    "--strict",
    is_flag=True,
    help="A namespace the input says nothing about fails (default: unverified, a warning).",
)
@click.option(
    "--allow-empty",
    is_flag=True,
    help="Input without any manifest is fine, not bad input (a pre-commit run on other YAML).",
)
@click.option(
    "--fix",
    "fix_dir",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Write what would make the input pass into DIR: each namespace's missing default-deny, "
    "label patches, and a kustomization.yaml (a kustomize Component) applying them.",
)
@click.option(
    "--write",
    is_flag=True,
    help="Add missing labels to the source files in place (never stdin); a file that cannot "
    "be edited exactly is left as it was.",
)
@click.option(
    "--force",
    is_flag=True,
    help="With --fix: replace files in DIR that differ from the fix (default: refuse, exit 2).",
)
@selection_options
@click.argument("paths", nargs=-1, required=True)
def check(
    config_path: str | None,
    fmt: str,
    cluster: bool,
    kubeconfig: str | None,
    strict: bool,
    allow_empty: bool,
    fix_dir: str | None,
    write: bool,
    force: bool,
    only: frozenset[str],
    skip: frozenset[str],
    fail_on: str,
    quiet: bool,
    paths: tuple[str, ...],
) -> None:
    """Judge manifests offline; exit 1 on an enforce-mode violation, 2 on bad input.

    A workload in a namespace the input holds nothing about (no Namespace, no policy: an
    application repository) is unverified, a warning, unless --strict or --cluster.
    --fix DIR and --write never change what is judged or the exit code; a label whose value
    only a person can choose is written as REPLACE-ME, which Guardrail rejects until then.

    \b
    Examples:
      guardrail check deploy/ k8s/app.yaml
      kustomize build overlays/prod | guardrail check -
      guardrail check --format sarif --cluster manifests/ > guardrail.sarif
      guardrail check --strict --only require-default-deny platform/ apps/
      guardrail check --fix fixes/ k8s/     # then: components: [fixes] in your kustomization
      guardrail check --write --fix fixes/ k8s/
    """
    from webhook import checking, report  # noqa: PLC0415 - each command imports only what it runs, so `--help` stays fast
    from webhook.report import text  # noqa: PLC0415 - as above
    from webhook.report.base import fails  # noqa: PLC0415 - as above

    _quiet_with_text(quiet, fmt)
    if force and fix_dir is None:
        click.echo(
            "guardrail: --force replaces files in the --fix directory; give --fix DIR", err=True
        )
        sys.exit(EXIT_BAD_INPUT)
    config = _load_config(config_path)
    selection = checking.Selection(only=only, skip=skip, strict=strict)
    with bad_input(prefix=""):
        result = checking.check_paths(
            list(paths),
            config,
            cluster=cluster,
            stdin=sys.stdin.buffer,
            kubeconfig=kubeconfig,
            selection=selection,
            config_file=config_path,
            plan_fixes=bool(fix_dir or write) or fmt in FIX_FORMATS,
            source_edits=write or fmt in EDIT_FORMATS,
        )
    for note in result.notes:
        click.echo(note, err=True)
    if result.resources == 0 and not (allow_empty and not result.errors):
        # An empty directory or a wrong path pattern must not pass CI green, and a report of
        # nothing judged would read as a pass.
        for error in result.errors:
            click.echo(error, err=True)
        if not result.errors:
            click.echo(f"no manifests found in {', '.join(paths)}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if fix_dir is not None or write:
        from webhook import fixing  # noqa: PLC0415 - only when writing fixes

        with bad_input():
            for line in fixing.apply(result.fixes, fix_dir, write=write, force=force):
                click.echo(f"guardrail: {line}", err=True)
    output = text.render_summary(result) if quiet else report.render(result, fmt)
    click.echo(output, nl=False)
    for error in result.errors:
        click.echo(error, err=True)
    if result.errors:
        noun = "file or object" if len(result.errors) == 1 else "files or objects"
        click.echo(
            f"guardrail: {len(result.errors)} {noun} could not be judged (above); "
            "the rest were judged",
            err=True,
        )
        sys.exit(EXIT_BAD_INPUT)
    sys.exit(EXIT_VIOLATION if fails(result, fail_on) else EXIT_OK)


# Formats that carry fixes (a `fix` per finding, SARIF `fixes`): planned for them even
# without --fix, so a code-scanning service or a tool can offer them (HTML may show them).
# The exact source edits cost a second parse of each file with a label finding: SARIF's
# fixes are those edits; JSON (CI's format, held to check's time target) carries them only
# with --write.
FIX_FORMATS = ("json", "sarif", "html")
EDIT_FORMATS = ("sarif",)


def _quiet_with_text(quiet: bool, fmt: str) -> None:
    if quiet and fmt != "text":
        click.echo(
            f"guardrail: --quiet prints the text summary; it cannot go with --format {fmt}",
            err=True,
        )
        sys.exit(EXIT_BAD_INPUT)


@main.command("test")
@text_or_json_option(
    "text: each expectation that does not hold, with Guardrail's message; json: all."
)
@click.option("--verbose", "-v", is_flag=True, help="Text: list the expectations that hold too.")
@click.argument("paths", nargs=-1, required=True)
def run_tests(fmt: str, verbose: bool, paths: tuple[str, ...]) -> None:
    """Run the fixture tests (guardrail-test.yaml) under each PATH with the webhook's engine.

    Exit 0 when every expectation holds, 1 when one does not, 2 on bad input.

    \b
    Examples:
      guardrail test examples/tests/
      guardrail test -v policies/tests/shop/guardrail-test.yaml
      guardrail test --format json tests/ > results.json
    """
    from webhook import fixtures  # noqa: PLC0415 - each command imports only what it runs, so `--help` stays fast

    with bad_input(prefix=""):
        files = [file for path in paths for file in fixtures.find_test_files(path)]
    if not files:
        # An empty directory or a misnamed file must not pass CI green.
        click.echo(f"no test files found in {', '.join(paths)}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    suite = fixtures.run_files(files)
    for note in suite.notes:
        click.echo(note, err=True)
    click.echo(fixtures.render(suite, fmt.lower(), verbose=verbose), nl=False)
    for error in suite.errors:
        click.echo(error, err=True)
    if suite.errors:
        sys.exit(EXIT_BAD_INPUT)
    sys.exit(EXIT_VIOLATION if suite.failed else EXIT_OK)


@main.command()
@config_option
@click.option("--namespace", "-n", default=None, help="Only this namespace.")
@format_option
@click.option("--write-reports", is_flag=True, help="Write PolicyReports to the cluster.")
@click.option("--include-passes", is_flag=True, help="Reports list passes too, not only failures.")
@click.option(
    "--report-api",
    type=click.Choice(["wgpolicyk8s", "openreports"], case_sensitive=False),
    default="wgpolicyk8s",
    show_default=True,
    help="wgpolicyk8s.io/v1alpha2 PolicyReports or openreports.io/v1alpha1 Reports.",
)
@kubeconfig_option("")
@selection_options
def audit(
    config_path: str | None,
    namespace: str | None,
    fmt: str,
    write_reports: bool,
    include_passes: bool,
    report_api: str,
    kubeconfig: str | None,
    only: frozenset[str],
    skip: frozenset[str],
    fail_on: str,
    quiet: bool,
) -> None:
    """Judge everything in the live cluster with the webhook's engine.

    \b
    Examples:
      guardrail audit
      guardrail audit -n shop --format json
      guardrail audit --write-reports --report-api openreports
    """
    from webhook import audit as audit_lib  # noqa: PLC0415 - each command imports only what it runs, so `--help` stays fast
    from webhook.checking import Selection  # noqa: PLC0415 - as above

    _quiet_with_text(quiet, fmt)
    config = _load_config(config_path)
    with bad_input():
        code = audit_lib.run(
            config,
            namespace=namespace,
            fmt=fmt,
            write_reports=write_reports,
            include_passes=include_passes,
            report_api=report_api,
            kubeconfig=kubeconfig,
            quiet=quiet,
            fail_on=fail_on,
            selection=Selection(only=only, skip=skip),
            config_file=config_path,
        )
    sys.exit(code)


@main.command()
@click.option(
    "--state",
    "state_path",
    type=click.Path(exists=True),
    help="Read the cluster state from these manifests (default: the live cluster).",
)
@kubeconfig_option(" for the live cluster")
@click.option("--namespace", "-n", default=None, help="The pod's namespace (else the manifest's).")
@click.option("--labels", default=None, help="The pod's labels, k=v,... (with --namespace).")
@click.option("--service-account", default=None, help="The pod's service account.")
@text_or_json_option("text: the verdict and the walk behind it; json: the same as data.")
@click.argument("manifest", required=False)
def explain(
    state_path: str | None,
    kubeconfig: str | None,
    namespace: str | None,
    labels: str | None,
    service_account: str | None,
    fmt: str,
    manifest: str | None,
) -> None:
    """Print the isolation verdict for a pod or workload and the walk behind it.

    \b
    Examples:
      guardrail explain --state examples/state examples/manifests/web.yaml
      guardrail explain --state examples/state -n shop --labels app=web,role=frontend
      guardrail explain -n shop              # every pod shop could run (labels not known)
    """
    from webhook import explain as explain_lib  # noqa: PLC0415 - each command imports only what it runs, so `--help` stays fast
    from webhook.manifests import load_paths  # noqa: PLC0415 - as above
    from webhook.state.files import load_state, state_from_objects  # noqa: PLC0415 - as above

    with bad_input():
        if manifest is None and namespace is None:
            raise GuardrailError("name a MANIFEST, or --namespace (and --labels)", "explain")
        if state_path is not None:
            state = load_state(state_path)
        else:
            from webhook.kube import KubeClient  # noqa: PLC0415 - only for the live cluster
            from webhook.state.live import read_cluster  # noqa: PLC0415 - as above

            state = state_from_objects(read_cluster(KubeClient(kubeconfig)))
        if manifest is not None:
            loaded = load_paths([manifest], sys.stdin.buffer)
            if not loaded.manifests:
                raise GuardrailError("no Kubernetes object in it", manifest)
            target = explain_lib.target_of_manifest(loaded.manifests[0].obj, namespace)
        else:
            assert namespace is not None
            target = explain_lib.target_of_labels(namespace, labels, service_account)
        if service_account is not None:
            target = explain_lib.Target(
                target.namespace, target.labels, service_account, target.described
            )
        result = explain_lib.explain(state, target)
    click.echo(explain_lib.render(result, fmt), nl=False)
    sys.exit(EXIT_OK if all(d.isolated for d in result.decisions) else EXIT_VIOLATION)


@main.group()
def manifests() -> None:
    """Print install manifests that follow from the config (deploy/, your own overlay)."""


@manifests.command("webhook")
@config_option
@click.option(
    "--namespace",
    default=OWN_NAMESPACE,
    show_default=True,
    help="The namespace guardrail runs in: its Service's, and always exempt.",
)
@click.option(
    "--patch",
    is_flag=True,
    help="Only the webhooks' namespaceSelectors, as a kustomize patch for your own overlay.",
)
@click.option("--out", "out_file", type=click.Path(dir_okay=False), help="Write to this file.")
@click.option(
    "--check",
    "check_file",
    type=click.Path(dir_okay=False),
    help="Write nothing; exit 1 with a diff unless this file holds exactly the output.",
)
def manifests_webhook(
    config_path: str | None,
    namespace: str,
    patch: bool,
    out_file: str | None,
    check_file: str | None,
) -> None:
    """The ValidatingWebhookConfiguration, its namespaceSelectors from exemptions.namespaces.

    \b
    Examples:
      guardrail manifests webhook --config deploy/base/config.yaml --out deploy/base/webhook.yaml
      guardrail manifests webhook --config my-guardrail/config.yaml --patch \\
          --out my-guardrail/namespace-selectors.yaml
    """
    from webhook import registration  # noqa: PLC0415 - each command imports only what it runs, so `--help` stays fast

    with bad_input():
        if out_file is not None and check_file is not None:
            raise GuardrailError("give --out or --check, not both", "manifests webhook")
        config = load_config(config_path, own_namespace=namespace)
        text = registration.render(config, source=config_path, namespace=namespace, patch=patch)
        if check_file is not None:
            sys.exit(_check_file(Path(check_file), text))
        if out_file is not None:
            _write_atomically(Path(out_file), text)
            return
    click.echo(text, nl=False)


def _check_file(path: Path, expected: str) -> int:
    """0 when the file holds the same objects as `expected` (comments aside: the header names
    the config's path as it was typed); else a unified diff on stdout and 1."""
    import difflib  # noqa: PLC0415 - only --check diffs

    try:
        found = path.read_text("utf-8")
    except OSError as exc:
        raise GuardrailError(f"cannot read: {exc.strerror or exc}", str(path)) from exc
    try:
        same = found == expected or yaml.safe_load(found) == yaml.safe_load(expected)
    except yaml.YAMLError:
        same = False
    if same:
        return EXIT_OK
    diff = difflib.unified_diff(
        found.splitlines(keepends=True),
        expected.splitlines(keepends=True),
        fromfile=str(path),
        tofile="guardrail manifests webhook",
    )
    click.echo("".join(diff), nl=False)
    click.echo(f"{path}: out of step with the config; regenerate it with --out", err=True)
    return EXIT_VIOLATION


def _write_atomically(path: Path, text: str) -> None:
    # A failed run never leaves a half-written or empty manifest (as `> file` would).
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_text(text, "utf-8")
        temporary.replace(path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise GuardrailError(f"cannot write: {exc.strerror or exc}", str(path)) from exc


@main.command()
@click.option(
    "--url",
    default="https://127.0.0.1:8443/validate",
    show_default=True,
    help="The webhook's /validate URL.",
)
@click.option(
    "--ca",
    "ca_file",
    default="certs/ca.crt",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="CA file that verifies the webhook's certificate.",
)
@click.option(
    "--operation",
    type=click.Choice(["CREATE", "UPDATE", "DELETE"], case_sensitive=False),
    default="CREATE",
    show_default=True,
    help="The operation the review says the object is under (any case).",
)
@click.option(
    "--username",
    default="guardrail-review",
    show_default=True,
    help="The requester the review names (exemptions by username apply).",
)
@click.argument("manifest")
def review(url: str, ca_file: str, operation: str, username: str, manifest: str) -> None:
    """Send a manifest to a running webhook and print the verdict as kubectl would.

    \b
    Examples:
      guardrail review examples/pod-unlabelled.yaml
      guardrail review --operation delete --url https://guardrail:8443/validate policy.yaml
    """
    from webhook import review_client  # noqa: PLC0415 - each command imports only what it runs, so `--help` stays fast

    with bad_input():
        outcome = review_client.review(
            manifest,
            url=url,
            ca_file=ca_file,
            operation=operation,
            username=username,
            stdin=sys.stdin.buffer,
        )
    for line in outcome.stderr_lines:
        click.echo(line, err=True)
    for line in outcome.stdout_lines:
        click.echo(line)
    sys.exit(EXIT_OK if outcome.allowed else EXIT_VIOLATION)
