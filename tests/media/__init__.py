"""Tests of pipelines.media on the GRID clips and on media the tests make with PyAV."""
