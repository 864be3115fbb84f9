"""Staging without rendering: name reservations, a dead owner's leftovers, and what a sweep
may and may not remove (studio.render.staging)."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest

from consent.registry import Registry
from studio.provenance.store import ManifestStore
from studio.render import RequestError, staging
from studio.render.staging import Staging
from studio.settings import Settings


def _die(job: Staging) -> None:
    """What kill -9 does to a render's staging: the lock is released, nothing is cleaned."""
    os.close(job._lock)
    job._lock = -1


def _left(settings: Settings) -> list[str]:
    root = staging.staging_root(settings)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_reserved_name_is_refused_until_its_owner_ends(settings: Settings,
                                                         registry: Registry) -> None:
    first = Staging.open(settings, "job-a")
    second = Staging.open(settings, "job-b")
    first.reserve("x.mp4", registry)
    with pytest.raises(RequestError, match="being rendered by job-a"):
        second.reserve("x.mp4", registry)
    first.close(registry)
    second.reserve("x.mp4", registry)
    second.close(registry)
    assert _left(settings) == ["jobs", "names"]


def test_an_existing_output_is_refused_after_reserving(settings: Settings,
                                                       registry: Registry) -> None:
    settings.outputs_dir.mkdir(parents=True)
    (settings.outputs_dir / "taken.mp4").write_bytes(b"someone's")
    job = Staging.open(settings, "job-c")
    with pytest.raises(RequestError, match="already exists"):
        job.reserve("taken.mp4", registry)
    assert not (staging.staging_root(settings) / "names" / "taken.mp4").exists()
    job.close(registry)


def test_a_dead_owners_name_is_taken_over_and_its_leftovers_cleaned(
        settings: Settings, registry: Registry) -> None:
    dead = Staging.open(settings, "job-dead")
    dead.reserve("y.mp4", registry)
    (dead.folder / "render.mp4").write_bytes(b"half a render")
    _die(dead)
    alive = Staging.open(settings, "job-alive")
    alive.reserve("y.mp4", registry)  # the dead job is cleaned on the way
    assert not dead.folder.exists()
    alive.close(registry)


def _crashed_inside_the_publication(settings: Settings, registry: Registry,
                                    name: str) -> tuple[Staging, int, Path]:
    """A job killed after linking its signed file into outputs/ and before the ledger's
    commit: the state names the link, the ledger has no output event."""
    store = ManifestStore(settings.manifests_dir)
    payload = store.allocate_payload(random.Random(7))
    job = Staging.open(settings, "job-linked")
    job.reserve(name, registry)
    signed = job.folder / "signed.mp4"
    signed.write_bytes(b"a signed file")
    sha = hashlib.sha256(signed.read_bytes()).hexdigest()
    store.put(sha, b"manifest bytes", payload=payload, frame_hashes=[1, 2, 3])
    job.record(payload=payload, sha256=sha, links=[(name, "signed.mp4")])
    settings.outputs_dir.mkdir(parents=True, exist_ok=True)
    return job, payload, signed


def test_a_sweep_removes_an_unpublished_link_and_releases_the_payload(
        settings: Settings, registry: Registry) -> None:
    job, payload, signed = _crashed_inside_the_publication(settings, registry, "z.mp4")
    os.link(signed, settings.outputs_dir / "z.mp4")
    _die(job)
    assert staging.sweep(settings, registry) == ["job-linked"]
    assert not (settings.outputs_dir / "z.mp4").exists()
    store = ManifestStore(settings.manifests_dir)
    released = store.released(payload)
    assert released is not None and "interrupted" in released["reason"]
    assert payload not in store.payloads_in_use() and store.by_payload(payload) == []
    assert _left(settings) == ["jobs", "names"]
    # A released payload is never issued again.
    assert all(store.allocate_payload(random.Random(7)) != payload for _ in range(3))


def test_a_sweep_never_removes_a_file_it_did_not_link(settings: Settings,
                                                      registry: Registry) -> None:
    job, _payload, _signed = _crashed_inside_the_publication(settings, registry, "w.mp4")
    (settings.outputs_dir / "w.mp4").write_bytes(b"put there by hand")
    _die(job)
    staging.sweep(settings, registry)
    assert (settings.outputs_dir / "w.mp4").read_bytes() == b"put there by hand"


def test_a_live_job_is_left_alone(settings: Settings, registry: Registry) -> None:
    job = Staging.open(settings, "job-live")
    job.reserve("v.mp4", registry)
    assert staging.sweep(settings, registry) == []
    assert job.folder.is_dir() and (staging.staging_root(settings) / "names" / "v.mp4").exists()
    job.close(registry)
    assert not job.folder.exists()


def test_media_left_in_old_job_folders_are_removed_at_start_up(settings: Settings,
                                                               registry: Registry) -> None:
    old = settings.jobs_dir / "job-old"
    (old / "work").mkdir(parents=True)
    for name in ("render.mp4", "signed.mp4", "request.json", "log.jsonl"):
        (old / name).write_bytes(b"x")
    staging.sweep(settings, registry)  # a render's sweep leaves old folders alone (cheap)
    assert (old / "signed.mp4").exists()
    staging.sweep(settings, registry, job_folders=True)  # the studio's start-up sweep
    assert sorted(p.name for p in old.iterdir()) == ["log.jsonl", "request.json"]
