"""A signer that adds a CAWG identity assertion (``cawg.identity``, ``cawg.x509.cose``).

c2pa-python 0.38 ships the native call that combines a claim signer with an X.509 identity
signer (``c2pa_identity_signer_create`` in ``libc2pa_c``: the combined signer writes one
``cawg.identity`` assertion whose signer payload references the named assertions and the
hard binding, signed with the identity credential) but binds no Python method for it. This
module declares that one function with ctypes, on the library handle c2pa-python already
loaded, and returns the combined signer as a ``c2pa.Signer``.

It reaches into c2pa-python's internals (``c2pa.c2pa._lib``, ``C2paSigner``,
``Signer._handle``, ``ManagedResource._teardown`` / ``_wrap_native_handle``), which is why
the dependency is pinned to 0.38.x and ``tests/provenance/test_identity_assertion.py`` signs
and reads an assertion end to end. Replace it with the SDK's own call once there is one.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Sequence
from typing import Any

import c2pa  # type: ignore[import-untyped]
from c2pa import c2pa as _native

_DECLARED = threading.Lock()
_declared = False


def _identity_signer_create() -> Any:
    global _declared
    fn = _native._lib.c2pa_identity_signer_create
    with _DECLARED:
        if not _declared:
            signer = ctypes.POINTER(_native.C2paSigner)
            fn.argtypes = [signer, signer, ctypes.POINTER(ctypes.c_char_p),
                           ctypes.POINTER(ctypes.c_char_p)]
            fn.restype = signer
            _declared = True
    return fn


def _strings(values: Sequence[str]) -> Any:
    """A NULL-terminated ``const char *[]`` (the native call reads until the NULL)."""
    return (ctypes.c_char_p * (len(values) + 1))(*[v.encode() for v in values], None)


def with_identity(claim: c2pa.Signer, identity: c2pa.Signer, *,
                  referenced: Sequence[str], roles: Sequence[str]) -> c2pa.Signer:
    """One signer that signs the claim with ``claim`` and adds a ``cawg.identity`` assertion
    signed with ``identity``, naming ``roles`` and referencing the assertions labelled
    ``referenced`` (the SDK adds the hard binding). Both inputs are consumed once the native
    call is made, also when it fails (it frees them either way); when the native call cannot
    be made (an ``AttributeError``: this c2pa-python lacks it) they are left to the caller."""
    if claim is identity:
        raise ValueError("the claim and identity signers must be two objects")
    # Before anything is consumed: a c2pa-python without the native call (or a changed
    # wrapper) raises here, and the caller still owns, and closes, both signers.
    create = _identity_signer_create()
    handles = (claim._handle, identity._handle)
    # Callback signers (an HSM, a KMS) call back into Python objects that must outlive the
    # native signer; the inputs' teardown below drops their own references to them.
    callbacks = [s._callback_cb for s in (claim, identity) if s._callback_cb is not None]
    refs, role_list = _strings(referenced), _strings(roles)
    try:
        ptr = create(*handles, refs, role_list)
    finally:
        for consumed in (claim, identity):
            consumed._teardown(free_handle=False)
    _native._check_ffi_operation_result(ptr, "could not add the CAWG identity signer: {}")
    combined = c2pa.Signer._wrap_native_handle(ptr)
    combined._studio_callbacks = callbacks
    return combined
