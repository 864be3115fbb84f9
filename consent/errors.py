"""One precise exception type per way a consent operation can fail.

Every error carries a stable machine-readable ``code`` (used by ``--json`` output and the
exit-code mapping of the CLI) and a message a consent officer can act on.
"""

from __future__ import annotations


class ConsentError(Exception):
    """Base class: anything the registry refuses or cannot do."""

    code = "consent.error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DocumentError(ConsentError):
    """A document is malformed, has the wrong types, unknown fields or bad values."""

    code = "document.invalid"


class DocumentTooLargeError(DocumentError):
    code = "document.too_large"


class UnsupportedSchemaError(DocumentError):
    code = "document.unsupported_schema"


class SignatureError(ConsentError):
    """A signature does not verify over the canonical bytes of the document."""

    code = "signature.invalid"


class UnknownKeyError(SignatureError):
    """A document is signed by a key the registry does not know for that performer."""

    code = "signature.unknown_key"


class KeyUnusableError(ConsentError):
    """A key cannot be used: revoked, retired, or bound to another performer."""

    code = "key.unusable"


class DuplicateError(ConsentError):
    code = "registry.duplicate"


class ExpiredError(ConsentError):
    code = "grant.expired"


class NotFoundError(ConsentError):
    code = "registry.not_found"


class ClockError(ConsentError):
    """The clock given to the registry is not trustworthy (naive, or behind the ledger)."""

    code = "clock.untrusted"


class LedgerError(ConsentError):
    code = "ledger.error"


class PassphraseError(ConsentError):
    code = "key.passphrase"


class ApprovalError(ConsentError):
    """A performer's approval of an output cannot be recorded (``consent approve``)."""

    code = "approval.invalid"


class ApprovalNotPublishedError(ApprovalError):
    """The approval names an output the ledger does not record as published under that
    grant, or was signed before that publication: nothing to approve (yet)."""

    code = "approval.not_published"


class ApprovalNotRequiredError(ApprovalError):
    """The grant the approval names does not require approval of its outputs."""

    code = "approval.not_required"


class MotionSealError(ConsentError):
    """A motion file's registry seal is missing, or does not vouch for this file and render."""

    code = "motion.seal"


class UntrustedSealError(MotionSealError):
    """Signed by a key that is neither this registry's nor a configured trusted key."""

    code = "motion.untrusted_signer"


class TamperedMotionError(MotionSealError):
    """The seal's signature, or the file's bytes under it, do not verify (edited file)."""

    code = "motion.tampered"


class UnledgeredSealError(MotionSealError):
    """The extraction decision the seal names is not in this registry's ledger as sealed."""

    code = "motion.not_in_ledger"


class SealScopeError(MotionSealError):
    """A sound seal used outside what it covers (another project, embedder or performer)."""

    code = "motion.out_of_scope"


class DecisionTokenError(ConsentError):
    """A render worker's signed decision is missing, or does not allow this work: the worker
    refuses (``consent.decision_token``)."""

    code = "decision_token.invalid"


class ForgedDecisionError(DecisionTokenError):
    """Not signed by the registry's key, or the bytes under the signature were changed."""

    code = "decision_token.forged"


class ExpiredDecisionError(DecisionTokenError):
    """The decision's validity ended (or has not started: a clock far behind)."""

    code = "decision_token.expired"


class DecisionScopeError(DecisionTokenError):
    """A sound decision handed to other work: another job or chunk, or other input files."""

    code = "decision_token.out_of_scope"
