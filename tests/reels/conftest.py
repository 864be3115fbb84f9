"""The seeded studio data folder of the render tests (demo performer bbaf2n with a grant and
an enrolled face, the demo shot's analysis kept), fresh for each test."""

from tests.render.conftest import cold_settings, registry, seeded_data, settings, warm_data

__all__ = ["cold_settings", "registry", "seeded_data", "settings", "warm_data"]
