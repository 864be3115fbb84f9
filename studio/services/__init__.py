"""The application layer: one implementation of every use case, under the CLI
(:mod:`studio.cli`), the studio UI (:mod:`studio.ui.handlers`) and the job pool
(:mod:`studio.jobs`).

One module per use case, each taking typed requests and returning typed results:

========================  ===================================================================
:mod:`.context`           what every use case runs against (settings, registry)
:mod:`.consent_check`     "would this render be allowed?" — a request file, or a scanned shot
:mod:`.render`            a lip-sync or reenactment render, start to publication; cancel
:mod:`.motion`            keep a driving performance as a sealed motion file
:mod:`.verify`            what a file is, who signed it, whether its consent still stands
:mod:`.desk`              the consent desk: performers, keys, grants, revocations, reports
:mod:`.faces`             enrol a performer's face, scan a shot, purge templates
:mod:`.ledger`            checkpoints, proofs, verification, search, witness, roles
:mod:`.jobs`              who may see, cancel and download which render job
:mod:`.setup`             the data folder, its database, keys and demo consent
:mod:`.errors`            the one table: error → exit code, HTTP status, message
========================  ===================================================================

Only this layer opens registry sessions and builds the consent gate's requests
(``AuthorizationRequest``, through :mod:`studio.render.authorization`); every gate call goes
through it, and every refusal after a gate call is in the ledger. ``tests/studio/test_layering.py``
holds the front ends to that. Modules import their heavy dependencies (the media stack) when
a use case runs, so that ``studio --help`` stays fast.
"""
