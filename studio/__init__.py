"""The studio application: settings, render orchestration, provenance, CLI and UI."""
