"""Reels (issue 17): a project's reels, their shots, cast and dialogue, and the reel job that
renders the consented shots, copies the others and conforms the full reel per language.

- ``models``: the tables (``studio_reel_*``, their own Alembic environment in ``migrations``);
- ``store``: :class:`ReelStore`, typed reads and writes of those tables;
- ``cutting``: the reel's shots as files (one streaming pass, frame-accurate);
- ``job``: :class:`ReelJob`, one reel in one language, resumable shot by shot.

The use cases (import, cast, render, status) are :mod:`studio.services.reels`.
"""
