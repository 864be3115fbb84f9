"""Provenance on every output: invisible watermark, signed C2PA manifest, manifest store."""
