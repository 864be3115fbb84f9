"""The README's gradio_client snippet, run as written against a live studio, and what a
download is: the requester's own copy, never a path under the data folder (issue 15)."""

from __future__ import annotations

import json
import re
import shutil
import wave
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from pipelines.media import load_audio
from studio.accounts import Role
from studio.ui.handlers import Studio

from .conftest import DEMO_SHOT, OTHER_VOICE, PASSWORDS, ROOT


def readme_snippet() -> str:
    """The python block under "The same operations through the API" in README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    after = text.split("**The same operations through the API**", 1)[1]
    match = re.search(r"```python\n(.*?)```", after, re.S)
    assert match, "README.md lost its gradio_client example"
    return match.group(1)


def _wav(source: Path, target: Path) -> Path:
    audio = load_audio(source)
    pcm = (np.clip(audio.samples.T, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(target), "wb") as out:
        out.setnchannels(pcm.shape[1])
        out.setsampwidth(2)
        out.setframerate(audio.rate)
        out.writeframes(pcm.tobytes())
    return target


def _signed_in(url: str, user: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=120)
    assert client.post("/login", data={"username": user,
                                       "password": PASSWORDS[user]}).status_code == 200
    return client


def _call(client: httpx.Client, api: str, *data: Any) -> tuple[str, Any]:
    """One API call over plain HTTP: (the final event, its data)."""
    event_id = client.post(f"/gradio_api/call/{api}", json={"data": list(data)}).json()[
        "event_id"]
    kind, payload = "", None
    with client.stream("GET", f"/gradio_api/call/{api}/{event_id}") as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                payload = json.loads(line.split(":", 1)[1])
    return kind, payload


@pytest.mark.slow
def test_the_readme_snippet_runs_and_downloads_are_per_requester(
        served: tuple[str, Studio], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, studio = served
    studio.accounts.add("opal", Role.OPERATOR, password=PASSWORDS["opal"])
    shutil.copyfile(DEMO_SHOT, tmp_path / "shot.mp4")
    _wav(OTHER_VOICE, tmp_path / "dub.wav")
    monkeypatch.chdir(tmp_path)
    code = readme_snippet().replace('"http://127.0.0.1:7860/"', repr(url)).replace(
        '"…"', repr(PASSWORDS["otto"]))
    scope: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), scope)  # the README, as written

    assert scope["verdict"].startswith("**ALLOW**")
    assert 'data-status="done"' in scope["progress"], scope["status"]
    assert scope["report"]["badges"]["consent"] == "active"
    job_id = scope["job_id"]
    (output,) = [p for p in studio.settings.outputs_dir.iterdir() if p.suffix == ".mp4"]

    otto, opal = _signed_in(url, "otto"), _signed_in(url, "opal")
    try:
        # Nothing under the data folder goes through Gradio's file route, for anyone.
        for client in (otto, opal):
            assert client.get(f"/gradio_api/file={output}").status_code == 403
            assert client.get(f"/gradio_api/file={studio.settings.data_dir}/studio.db"
                              ).status_code == 403
        # The owner gets a copy at an unguessable address outside the data folder ...
        kind, data = _call(otto, "job_status", job_id)
        assert kind == "complete", data
        download = data[3]
        assert str(studio.settings.data_dir) not in download["path"]
        got = otto.get(download["url"].split(str(url), 1)[-1])
        assert got.status_code == 200 and got.content == output.read_bytes()
        # ... and another operator is refused the job, so never learns that address.
        kind, data = _call(opal, "job_status", job_id)
        assert kind == "error" and "another user" in json.dumps(data)
    finally:
        otto.close()
        opal.close()
