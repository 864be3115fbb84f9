"""Manifests of the neural backends, as Python data (no package-data needed).

Hashes: no published SHA-256 for these public checkpoints could be confirmed from this
machine (no network; searches of public code for the hub LFS pointers found none), so every
``sha256`` is None and the registry falls back to hashes *pinned locally* on first import
(``studio models verify DIR --pin``: trust on first use). When a published hash becomes
known, write it here: a published hash always wins over a pin.

Sizes: ``size`` is enforced and therefore only set where it is certain; ``reported_size`` is
what third-party setup guides quote for the public files (shown by ``studio models list``, not
enforced).

Licences (MODELS.md, "Licences to record per model"):

* MuseTalk 1.5: code MIT; the UNet weights' model card says CreativeML OpenRAIL-M, which
  permits commercial use subject to its use-based restrictions (Attachment A), which must be
  passed on. The VAE is ``stabilityai/sd-vae-ft-mse`` (MIT model card); the audio encoder is
  OpenAI ``whisper-tiny`` (Apache-2.0).
* LivePortrait: code and weights MIT. Its insightface detector is *not* part of this
  manifest: the studio crops faces with mediapipe instead.
"""

from __future__ import annotations

from typing import Final

from pipelines.models.spec import BackendManifest, ModelFile, ModelLicence

OPENRAIL_M: Final = ModelLicence(
    licence="CreativeML-OpenRAIL-M",
    commercial=True,
    conditions="CreativeML OpenRAIL-M: commercial use allowed under the use-based "
               "restrictions of its Attachment A, which must be passed on to users.",
    url="https://huggingface.co/TMElyralab/MuseTalk",
)
MIT_VAE: Final = ModelLicence(
    licence="MIT", commercial=True, url="https://huggingface.co/stabilityai/sd-vae-ft-mse")
APACHE_WHISPER: Final = ModelLicence(
    licence="Apache-2.0", commercial=True, url="https://huggingface.co/openai/whisper-tiny")
MIT_LIVEPORTRAIT: Final = ModelLicence(
    licence="MIT", commercial=True, url="https://github.com/KwaiVGI/LivePortrait")

MUSETALK_15: Final = BackendManifest(
    backend="musetalk-1.5",
    description="MuseTalk 1.5 lip-sync: a single-step latent inpainting UNet (SD 1.x layout) "
                "conditioned on whisper-tiny audio features, with the sd-vae-ft-mse VAE.",
    code_licence="MIT",
    files=(
        ModelFile("musetalkV15/unet.pth", None, None, OPENRAIL_M,
                  "UNet2DConditionModel state dict (torch pickle)",
                  reported_size=3_400_074_924,
                  source="https://huggingface.co/TMElyralab/MuseTalk (musetalkV15/unet.pth)"),
        ModelFile("musetalkV15/musetalk.json", None, None, OPENRAIL_M,
                  "UNet2DConditionModel config (in_channels 8, cross_attention_dim 384)",
                  reported_size=748,
                  source="https://huggingface.co/TMElyralab/MuseTalk (musetalkV15/musetalk.json)"),
        ModelFile("sd-vae/config.json", None, None, MIT_VAE, "AutoencoderKL config",
                  reported_size=547,
                  source="https://huggingface.co/stabilityai/sd-vae-ft-mse (config.json)"),
        ModelFile("sd-vae/diffusion_pytorch_model.bin", None, None, MIT_VAE,
                  "AutoencoderKL weights (torch pickle)", reported_size=334_707_217,
                  source="https://huggingface.co/stabilityai/sd-vae-ft-mse "
                         "(diffusion_pytorch_model.bin)"),
        ModelFile("whisper/config.json", None, None, APACHE_WHISPER, "WhisperConfig (tiny)",
                  reported_size=1_983,
                  source="https://huggingface.co/openai/whisper-tiny (config.json)"),
        ModelFile("whisper/pytorch_model.bin", None, None, APACHE_WHISPER,
                  "Whisper-tiny weights (only the encoder is used)", reported_size=151_095_027,
                  source="https://huggingface.co/openai/whisper-tiny (pytorch_model.bin)"),
    ),
)
"""The feature extractor is built from whisper-tiny's default parameters (80 mel bins,
16 kHz, hop 160, 30 s chunks), so ``whisper/preprocessor_config.json`` is not needed."""

LIVEPORTRAIT: Final = BackendManifest(
    backend="liveportrait",
    description="LivePortrait reenactment: appearance/motion extractors, warping module, "
                "SPADE generator and stitching/retargeting MLPs.",
    code_licence="MIT",
    files=tuple(
        ModelFile(path, None, None, MIT_LIVEPORTRAIT, description,
                  source="https://huggingface.co/KwaiVGI/LivePortrait "
                         f"(pretrained_weights/liveportrait/{path})")
        for path, description in (
            ("base_models/appearance_feature_extractor.pth", "appearance feature extractor"),
            ("base_models/motion_extractor.pth", "motion extractor (ConvNeXt-V2 tiny)"),
            ("base_models/warping_module.pth", "warping module with dense motion"),
            ("base_models/spade_generator.pth", "SPADE generator (256 → 512)"),
            ("retargeting_models/stitching_retargeting_module.pth",
             "stitching and eye/lip retargeting MLPs"),
        )
    ),
)

MANIFESTS: Final[dict[str, BackendManifest]] = {
    m.backend: m for m in (MUSETALK_15, LIVEPORTRAIT)
}
