"""Stage-change nudges: when a sync sees a deal enter a new canonical stage, its owner gets
that stage's content by e-mail and Web Push — batched, rate-limited, quiet at night.

::

    from stagelink.nudges.service import run_nudges

    report = run_nudges(config, storage)   # after a sync job, and every minute

Modules: :mod:`.config` (``nudges:`` settings), :mod:`.detect` (history → ledger),
:mod:`.plan` (quiet hours, rate limit, digests), :mod:`.render` (templates),
:mod:`.mailer` (SMTP), :mod:`.webpush` (VAPID Web Push), :mod:`.subscriptions` (reps'
browsers), :mod:`.service` (the pass that ties them together).

This package imports nothing on purpose: ``stagelink.settings`` imports
:mod:`.config`, and :mod:`.service` imports ``stagelink.settings``.
"""
