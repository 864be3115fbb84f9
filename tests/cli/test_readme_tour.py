"""The README's CLI tour ("A tour of the consent desk") runs, command by command, as written.

Its ``sh`` blocks are read from README.md, so the tour cannot drift from the CLI: a renamed
option, a changed exit code or a command that no longer exists fails here. They run in a
fresh data folder (``studio init``), in a temporary working folder and home; the files the
tour takes as given (a grant draft, the production's key pair, a shot, a reference clip, a
request file) are made first, and its two placeholders are filled in (``<fingerprint>``: the
key the tour rotates, then revokes; ``/srv/witness``: a temporary folder).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from studio.cli import app
from tests.factory import grant_draft

ROOT = Path(__file__).resolve().parents[2]
GRID = ROOT / "assets" / "media" / "grid"
PASS = "correct horse battery"
TOUR = "A tour of the consent desk"

#: Commands of the tour whose documented outcome is not 0, and why.
EXPECTED = {
    # a request file with no identity verdicts: "every rule with its outcome; exit 1 on deny"
    "consent check request.yaml": 1,
    # the shot's face is the demo performer's, not ana's: a deny (identity rule)
    "consent check request.yaml --video shot.mp4": 1,
    # the officer already revoked grant-1 above: the performer's own revocation is a conflict
    "consent import rev.json": 5,
    # the tour's data folder is SQLite: roles exist on PostgreSQL only (input rejected)
    "ledger grant-role": 3,
}

runner = CliRunner()


def tour_commands(readme: str) -> list[list[str]]:
    """The tour section's ``sh`` blocks as commands, each as its words (continuations
    joined, comments and blank lines dropped)."""
    section = readme.split(f"## {TOUR}", 1)[1].split("\n## ", 1)[0]
    commands: list[list[str]] = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        pending = ""
        for line in block.splitlines():
            line = pending + line
            pending = ""
            if line.rstrip().endswith("\\"):
                pending = line.rstrip()[:-1] + " "
                continue
            words = shlex.split(line, comments=True)
            if words:
                commands.append(words)
    return commands


def _expected(words: list[str]) -> int:
    rest = " ".join(words[1:])
    for prefix, code in sorted(EXPECTED.items(), key=lambda kv: -len(kv[0])):
        if rest.startswith(prefix):
            return code
    return 0


def _studio(data: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--data", str(data), *args])
    return result.exit_code, result.output


def test_the_tour_is_found() -> None:
    commands = tour_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(commands) >= 25 and all(c[0] == "studio" for c in commands), commands
    assert {_expected(c) for c in commands} >= {0, 1, 5}


@pytest.mark.slow
def test_the_readme_cli_tour_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    home, work, data = tmp_path / "home", tmp_path / "work", tmp_path / "data"
    for folder in (home / "keys", work):
        folder.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("STUDIO_KEY_PASSPHRASE", PASS)
    monkeypatch.delenv("STUDIO_DATABASE_URL", raising=False)

    # What the tour takes as given.
    code, out = _studio(data, "init", "--json")
    assert code == 0, out
    draft = grant_draft("ana", "grant-1", valid_until="2036-01-01T00:00:00Z",
                        performer={"performer_id": "ana", "legal_name": "Ana Pérez"},
                        signatory={"role": "self", "name": "Ana Pérez"})
    (work / "draft.yaml").write_text(yaml.safe_dump(draft), encoding="utf-8")
    for name, folder in (("dubhouse", work), ("ana2", home / "keys")):
        code, out = _studio(data, "consent", "keygen", name, "--out", str(folder))
        assert code == 0, out
    shutil.copyfile(GRID / "bbaf2n.mpg", work / "shot.mp4")
    shutil.copyfile(GRID / "brbk7n.mpg", work / "ana-reference.mp4")
    (work / "request.yaml").write_text(yaml.safe_dump({"request": {
        "operation": "lipsync", "project_id": "proj-1", "language": "fr", "territory": "FR",
        "channel": "streaming", "alteration": "mouth_region", "operator": "Olga",
        "subjects": [{"performer_id": "ana", "technique": "lip_sync", "track_id": "t1"}]}}),
        encoding="utf-8")

    fingerprint = ""
    for command in tour_commands((ROOT / "README.md").read_text(encoding="utf-8")):
        if "<fingerprint>" in command:
            assert fingerprint, "the tour rotates a key before the keygen gave its fingerprint"
        args = [w.replace("~/", f"{home}/").replace("<fingerprint>", fingerprint)
                .replace("/srv/witness", str(tmp_path / "witness")) for w in command[1:]]
        code, out = _studio(data, *args, *(["--json"] if args[:2] == ["consent", "keygen"]
                                             else []))
        shown = shlex.join(command)
        assert code == _expected(command), f"{shown}\n→ exit {code}\n{out}"
        assert "Traceback" not in out, f"{shown}\n{out}"
        if args[:2] == ["consent", "keygen"] and args[2] == "ana":
            fingerprint = json.loads(out)["key_id"]
