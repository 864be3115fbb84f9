"""The signed consent registry: documents, keys, store, gate and ledger.

This package knows nothing of pixels. See ``../shared/docs/CONSENT.md`` for the rules.
"""
