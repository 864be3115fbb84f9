"""Pixels and samples: media I/O, faces, speech, lip-sync and reenactment backends.

This package knows nothing of consent; the studio passes it only what the gate allowed.
"""
