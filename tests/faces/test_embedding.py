"""Identity embeddings: dlib distances on the six GRID speakers, and the ArcFace loader."""

from __future__ import annotations

import itertools
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from pipelines.faces import (
    DlibEmbedder,
    FaceEmbedder,
    InsightFaceEmbedder,
    MissingDependencyError,
    ModelFileMissingError,
    faces_in_image,
)
from pipelines.faces.embedding import (
    ARCFACE_TEMPLATE,
    UNKNOWN_LICENCE,
    align_arcface,
    arcface_matrix,
    five_points,
    read_licence,
)
from tests.faces.conftest import GRID_NAMES, astronaut, grid_frames

FRAMES = (5, 25, 45, 65)  # spread over each clip: silence, speech, speech, silence
TINY_ONNX = Path(__file__).parent / "data" / "tiny_arcface.onnx"


@pytest.fixture(scope="module")
def grid_embeddings(dlib_embedder: DlibEmbedder) -> dict[str, list[np.ndarray]]:
    out: dict[str, list[np.ndarray]] = {}
    for name in GRID_NAMES:
        out[name] = []
        for i in FRAMES:
            frame = grid_frames(name)[i]
            (face,) = faces_in_image(frame, max_faces=1)
            out[name].append(dlib_embedder.embed(frame, face))
    return out


def test_dlib_embedder_satisfies_the_protocol(dlib_embedder: DlibEmbedder) -> None:
    assert isinstance(dlib_embedder, FaceEmbedder)
    assert dlib_embedder.dim == 128
    assert "CC0" in dlib_embedder.licence
    assert 0.3 < dlib_embedder.match_threshold < 0.6


def test_dlib_embedding_shape_and_contiguity(dlib_embedder: DlibEmbedder) -> None:
    frame = np.asarray(grid_frames("lbbc2a")[30])
    (face,) = faces_in_image(frame)
    emb = dlib_embedder.embed(frame, face)
    assert emb.shape == (128,) and emb.dtype == np.float32 and np.all(np.isfinite(emb))
    # A strided view (as from a wider buffer) must give the same vector as a packed copy.
    wide = np.zeros((288, 720, 3), np.uint8)
    wide[:, ::2] = frame
    again = dlib_embedder.embed(wide[:, ::2], face)
    assert dlib_embedder.distance(emb, again) < 1e-5
    assert dlib_embedder.distance(emb, emb) == 0.0


def test_dlib_distances_separate_the_six_grid_speakers(
    dlib_embedder: DlibEmbedder, grid_embeddings: dict[str, list[np.ndarray]]
) -> None:
    names = GRID_NAMES
    means = {n: np.mean(grid_embeddings[n], axis=0) for n in names}
    same = {
        n: [dlib_embedder.distance(a, b)
            for a, b in itertools.combinations(grid_embeddings[n], 2)]
        for n in names
    }
    worst_pair = {
        (a, b): min(dlib_embedder.distance(x, y)
                    for x in grid_embeddings[a] for y in grid_embeddings[b])
        for a, b in itertools.combinations(names, 2)
    }
    width = max(len(n) for n in names)
    print(f"\ndlib distance between mean embeddings (frames {FRAMES}); diagonal: mean "
          "same-speaker distance between frames")
    print(" " * width + "".join(f"{n[:8]:>10}" for n in names))
    for a in names:
        row = [np.mean(same[a]) if a == b else dlib_embedder.distance(means[a], means[b])
               for b in names]
        print(f"{a:<{width}}" + "".join(f"{v:10.3f}" for v in row))
    all_same = [d for ds in same.values() for d in ds]
    print(f"same speaker, frame pairs: max {max(all_same):.3f}, mean {np.mean(all_same):.3f}; "
          f"different speakers, closest frame pair: {min(worst_pair.values()):.3f} "
          f"{min(worst_pair, key=worst_pair.__getitem__)}")

    assert max(all_same) <= 0.4
    assert 0.15 <= float(np.mean(all_same)) <= 0.35  # "typically ≈ 0.3" (0.2 on these clips)
    # Every pair of speakers, every pair of frames, stays above the re-id threshold with a
    # margin. (dlib's customary 0.6 is *not* met: one pair of speakers comes to ≈0.57.)
    for pair, d in worst_pair.items():
        assert d >= 0.5, pair
        assert d > dlib_embedder.match_threshold + 0.05, pair
    for a, b in itertools.combinations(names, 2):
        assert dlib_embedder.distance(means[a], means[b]) >= 0.55, (a, b)
    assert max(all_same) < dlib_embedder.match_threshold < min(worst_pair.values())


def test_insightface_on_an_empty_folder_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileMissingError) as err:
        InsightFaceEmbedder(tmp_path)
    assert "w600k_r50.onnx" in str(err.value)
    assert str(tmp_path) in str(err.value)
    with pytest.raises(ModelFileMissingError, match=r"glintr100\.onnx"):
        InsightFaceEmbedder(tmp_path, model_file="glintr100.onnx")


def test_dlib_embedder_on_an_empty_folder_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileMissingError, match=r"shape_predictor_5_face_landmarks\.dat"):
        DlibEmbedder(tmp_path)


def test_licence_comes_from_the_model_folder(tmp_path: Path) -> None:
    assert read_licence(tmp_path) == UNKNOWN_LICENCE
    (tmp_path / "licence.txt").write_text("\n  Commercial licence #42 from the vendor\nmore\n")
    assert read_licence(tmp_path) == "Commercial licence #42 from the vendor"
    (tmp_path / "LICENSE").write_text("MIT License\n")
    assert read_licence(tmp_path) == "MIT License"


def test_insightface_without_onnxruntime_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A None entry in sys.modules makes `import onnxruntime` fail as if it were absent.
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    shutil.copy(TINY_ONNX, tmp_path / "w600k_r50.onnx")
    with pytest.raises(MissingDependencyError, match="pip install onnxruntime"):
        InsightFaceEmbedder(tmp_path)


def test_arcface_alignment_puts_the_face_on_the_template() -> None:
    (face,) = faces_in_image(astronaut())
    crop = align_arcface(astronaut(), face)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    matrix = arcface_matrix(face)
    src = five_points(face)
    mapped = src @ matrix[:, :2].T + matrix[:, 2]
    # Least squares: no better similarity exists (perturbing it only raises the residual)...
    residual = np.linalg.norm(mapped - ARCFACE_TEMPLATE, axis=1)
    for delta in (np.array([[1.01, 0, 0], [0, 1.01, 0]]), np.array([[1, 0, 0.5], [0, 1, 0]])):
        worse = src @ (matrix[:, :2] @ delta[:, :2]).T + matrix[:, 2] + delta[:, 2]
        assert (np.linalg.norm(worse - ARCFACE_TEMPLATE, axis=1) ** 2).sum() > (residual**2).sum()
    # ...the eyes land within a few pixels of the template (face shapes differ a little)...
    assert residual[:2].max() < 4.0, residual
    assert residual.max() < 10.0, residual
    # ...and the crop really shows the face there: re-detected on the crop (enlarged 3×),
    # the five points are where the matrix sent them.
    big = np.ascontiguousarray(np.repeat(np.repeat(crop, 3, axis=0), 3, axis=1))
    (again,) = faces_in_image(big)
    assert np.linalg.norm(five_points(again) / 3 - mapped, axis=1).max() < 3.0


def test_insightface_embedder_runs_a_local_onnx(tmp_path: Path) -> None:
    # A tiny random-weight network with ArcFace's input layout (1×3×112×112) and a 16-d
    # output: it checks loading, alignment, normalisation and distances, not accuracy.
    shutil.copy(TINY_ONNX, tmp_path / "w600k_r50.onnx")
    (tmp_path / "LICENSE").write_text("Licensed to the studio for commercial use\n")
    embedder = InsightFaceEmbedder(tmp_path)
    assert isinstance(embedder, FaceEmbedder)
    assert embedder.licence == "Licensed to the studio for commercial use"
    assert embedder.dim == 16
    frames = [np.asarray(grid_frames("bbaf2n")[i]) for i in (10, 11)]
    faces = [faces_in_image(f)[0] for f in frames]
    a, b = (embedder.embed(f, o) for f, o in zip(frames, faces, strict=True))
    assert a.shape == (16,) and a.dtype == np.float32
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    assert embedder.distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert 0.0 <= embedder.distance(a, b) <= 2.0
    assert np.array_equal(a, embedder.embed(frames[0], faces[0]))
