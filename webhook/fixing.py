"""Writing fixes (webhook/fixes.py): the fix directory of `check --fix DIR`, and `--write`.

- **DIR** gets each file of the plan and a kustomization.yaml (a kustomize Component). A file
  already there is left alone when it holds exactly that text and otherwise refused, naming it
  (a person may have chosen a placeholder's value in it), unless `force`; nothing is written
  before every file has passed that check, and no path leaves DIR (names are checked when
  fixes are made; here the real path of each file, symbolic links resolved, must be inside
  DIR's). Each file is written whole or not at all (a temporary file renamed over it).
- **--write** makes each label fix's exact edits in its source file, only when the file still
  holds the text they were computed on and re-reading the edited text finds exactly the old
  objects plus the labels; otherwise the file is left byte for byte as it was, with a reason.
  The file keeps its mode, its line endings and a UTF-8 byte order mark; a symbolic link is
  followed, not replaced. UTF-16 files are left as they are.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field

from webhook.fixes import KUSTOMIZATION, Fix, Plan
from webhook.policy.errors import GuardrailError
from webhook.source_edits import Edit, verified
from webhook.source_edits import apply as apply_edits


@dataclass(slots=True)
class Written:
    """What a write did: paths written, paths already holding the fix, and why others were not."""

    wrote: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def apply(plan: Plan, fix_dir: str | None, *, write: bool, force: bool) -> list[str]:
    """`--write`, then `--fix DIR`: the lines to tell the user (what was written, what was not
    and why, and loudly which label values are placeholders a person must still choose).
    A conflict in DIR is refused (GuardrailError) before anything at all is written."""
    said: list[str] = []
    if fix_dir is not None:
        planned = frozenset(f.source.file for f in plan.unique() if f.source is not None)
        plan.applied = planned if write else frozenset()
        check_directory(fix_dir, directory_contents(plan), force=force)
    plan.applied = frozenset()
    if write:
        rewritten = write_sources(plan)
        said.extend(f"rewrote {file}: added {_added(plan, file)}" for file in rewritten.wrote)
        said.extend(rewritten.notes)
    if fix_dir is not None:
        contents = directory_contents(plan)
        done = write_directory(fix_dir, contents, force=force)
        plan.directory = fix_dir
        said.extend(f"wrote {path}" for path in done.wrote)
        said.extend(f"unchanged {path} (it holds the fix already)" for path in done.unchanged)
        if contents:
            said.append(
                f"to apply them, add {fix_dir} to the components: of the kustomization that "
                "builds these manifests (it is a kustomize Component)"
            )
    if write:
        said.extend(_not_in_place(plan, fix_dir))
    said.extend(plan.notes)
    said.extend(_placeholders(plan))
    return said


def _added(plan: Plan, file: str) -> str:
    return "; ".join(
        f"{', '.join(f'{k}={v}' for k, v in fix.labels.items())} (line {fix.source.line})"
        for fix in plan.unique()
        if fix.source is not None and fix.source.file == file
    )


def _not_in_place(plan: Plan, fix_dir: str | None) -> list[str]:
    said = []
    for fix in plan.unique():
        if fix.kind != "labels" or fix.source is not None or not fix.source_note:
            continue
        where = plan.location(fix)
        instead = (
            f"; its patch is {where}"
            if where
            else ("" if fix_dir else "; --fix DIR writes a patch for it instead")
        )
        said.append(f"{fix.subject}: not rewritten: {fix.source_note}{instead}")
    return said


def _placeholders(plan: Plan) -> list[str]:
    places = []
    for fix in plan.unique():
        if not fix.placeholders:
            continue
        keys = ", ".join(fix.placeholders)
        where = plan.location(fix)
        if plan.is_applied(fix) and fix.source is not None:
            places.append(f"{fix.source.file}:{fix.source.line}: {keys}")
        elif where is not None:
            places.append(f"{where}: {keys}")
    if not places:
        return []
    return [
        "warning: REPLACE-ME is a placeholder that Guardrail rejects: choose the values of "
        f"these labels before applying them: {'; '.join(places)}"
    ]


def directory_contents(plan: Plan) -> dict[str, str]:
    """The fix directory's files, by '/'-separated path relative to it."""
    files = plan.files()
    if not files:
        return {}
    contents = {path: fix.text() for path, fix in files.items()}
    contents[KUSTOMIZATION] = plan.kustomization(files)
    return contents


def check_directory(directory: str, contents: Mapping[str, str], *, force: bool) -> None:
    """Refuse (GuardrailError) before anything is written: a path outside DIR, or a file that
    differs from its fix without `force`."""
    root = os.path.realpath(directory)
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise GuardrailError("not a directory; --fix needs a directory to write to", directory)
    for path, text in contents.items():
        shown = _shown(directory, path)
        real = os.path.realpath(os.path.join(root, *path.split("/")))
        if os.path.commonpath([root, real]) != root or path.startswith("/"):
            raise GuardrailError(
                "would be written outside the fix directory (a symbolic link on the way); refused",
                shown,
            )
        if not os.path.lexists(real):
            continue
        if not os.path.isfile(real):
            raise GuardrailError("exists and is not a regular file; not overwritten", shown)
        if _read(real, shown) != text.encode("utf-8") and not force:
            raise GuardrailError(
                "exists and differs from the fix; not overwritten (--force replaces it)", shown
            )


def write_directory(directory: str, contents: Mapping[str, str], *, force: bool) -> Written:
    """Write the fix directory (after `check_directory`, which this calls again)."""
    check_directory(directory, contents, force=force)
    root = os.path.realpath(directory)
    written = Written()
    for path, text in contents.items():
        shown = _shown(directory, path)
        real = os.path.join(root, *path.split("/"))
        data = text.encode("utf-8")
        if os.path.isfile(real) and _read(real, shown) == data:
            written.unchanged.append(shown)
            continue
        try:
            os.makedirs(os.path.dirname(real), exist_ok=True)
        except OSError as exc:
            raise GuardrailError(f"cannot create: {exc.strerror or exc}", shown) from exc
        _write_atomically(real, data, shown, mode=None)
        written.wrote.append(shown)
    return written


def write_sources(plan: Plan) -> Written:
    """Make every label fix with an exact source edit in its file (see the module docstring);
    `plan.applied` becomes the files rewritten."""
    by_file: dict[str, list[Fix]] = {}
    for fix in plan.unique():
        if fix.source is not None:
            by_file.setdefault(fix.source.file, []).append(fix)
    written = Written()
    for file, fixes in by_file.items():
        reason = _rewrite(file, fixes)
        if reason is None:
            written.wrote.append(file)
        else:
            written.notes.append(f"{file}: not rewritten: {reason}")
    plan.applied = frozenset(written.wrote)
    return written


def _rewrite(file: str, fixes: list[Fix]) -> str | None:  # noqa: PLR0911 - each reason to leave the file alone returns it
    real = os.path.realpath(file)
    try:
        data = _read(real, file)
        mode = stat.S_IMODE(os.stat(real).st_mode)
    except GuardrailError as exc:
        return str(exc)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "it is UTF-16; only UTF-8 files are rewritten"
    bom = codecs.BOM_UTF8 if data.startswith(codecs.BOM_UTF8) else b""
    try:
        text = data[len(bom) :].decode("utf-8")
    except UnicodeDecodeError:
        return "it is not valid UTF-8"
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    changes = {}
    edits: list[Edit] = []
    for fix in fixes:
        assert fix.source is not None
        if fix.source.digest != digest:
            return "it changed since it was read"
        edits.extend(fix.source.edits)
        changes[fix.source.line] = (fix.label_path, fix.labels)
    after = apply_edits(text, edits)
    if not verified(file, text, after, changes):
        return "the edit would change more than the labels"
    try:
        _write_atomically(real, bom + after.encode("utf-8"), file, mode=mode)
    except GuardrailError as exc:
        return str(exc)
    return None


def _shown(directory: str, path: str) -> str:
    return os.path.join(directory, *path.split("/"))


def _read(path: str, shown: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise GuardrailError(f"cannot read: {exc.strerror or exc}", shown) from exc


def _write_atomically(path: str, data: bytes, shown: str, *, mode: int | None) -> None:
    temporary = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.guardrail-tmp")
    try:
        with open(temporary, "xb") as fh:
            fh.write(data)
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # nothing was created, or it is gone already
            os.unlink(temporary)
        raise GuardrailError(f"cannot write: {exc.strerror or exc}", shown) from exc
