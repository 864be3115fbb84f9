"""Revisions of the studio's own tables."""
