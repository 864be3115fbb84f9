"""The one way a file is hashed: SHA-256, streamed (memory flat in the file's size).

Input media, scripts, reference clips, outputs and model weights are all named by this hash
(the gate's ``source_media_sha256``, a grant's evidence, the ledger's output events, the
model manifests), so they must agree byte for byte on how it is computed.
"""

from __future__ import annotations

import hashlib
import os

#: Bytes read at a time: large enough for disk throughput, small enough to stay flat.
CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Lower-case hex SHA-256 of the file at ``path``."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def file_identity(path: str | os.PathLike[str]) -> tuple[int, ...] | None:
    """What changes when a file's bytes may have: device, inode, size, mtime and ctime
    (whoever can write the file can set its mtime back, not its ctime); ``None`` when it
    cannot be looked at. Equal identities before and after reading a file say the reads saw
    one content."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
