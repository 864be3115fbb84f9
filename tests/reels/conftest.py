"""The seeded studio data folder of the render tests (demo performer bbaf2n with a grant and
an enrolled face), fresh for each test."""

from tests.render.conftest import registry, seeded_data, settings

__all__ = ["registry", "seeded_data", "settings"]
