"""Stage changes made in the HubSpot sandbox, synced by the real connector, nudge the deal
owner through a real SMTP server and a Web Push service that decrypts like a browser."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select

from stagelink.nudges.config import QuietHours, RateLimit
from stagelink.nudges.service import LEASE_NAME, NudgeReport, run_nudges
from stagelink.recommendations import Recommender
from stagelink.storage import CrmOpportunity, utcnow
from stagelink.storage.leases import acquire_lease, release_lease
from stagelink.storage.models.nudges import (
    Nudge,
    NudgeKind,
    NudgeState,
    NudgeTransition,
    PushSubscription,
)
from stagelink.surfaces.links import LinkSigner
from stagelink.surfaces.views import build_view
from stagelink.web import create_app
from tests.nudges.conftest import (
    HS,
    PUBLIC_URL,
    PushService,
    SmtpServer,
    World,
    browser,
    nudge_settings,
    start_world,
    vapid_verified,
    with_nudges,
)
from tests.web.conftest import LiveServer


def started(world: World) -> None:
    """First sync, then the first pass: what the CRM held before is the past."""
    world.sync()
    report = run_nudges(world.config, world.storage)
    assert report.started == [HS]
    assert world.smtp.mails == []


def test_one_stage_change_sends_one_email_and_one_push_with_the_stage_content(
    world: World,
) -> None:
    started(world)
    deal, owner = world.open_deals()[0]
    recommender = Recommender.open(world.config, world.storage.engine)
    signer = LinkSigner.from_config(world.config)
    # The owner opened the deal's page and allowed notifications: the page stores the
    # browser's subscription through the API with its session bearer.
    opened = build_view(recommender, signer, connection=HS, opportunity_id=deal, rep=owner)
    phone = browser(world.push, "phone")
    with (
        LiveServer(create_app(world.config, world.storage)) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        answer = http.post(
            "/api/v1/push/subscriptions",
            json=phone.to_json(),
            headers={"Authorization": f"Bearer {opened.session_token}"},
        )
    assert answer.status_code == 201, answer.text
    world.set_stages({deal: "qualifiedtobuy"})  # discover → qualify
    world.sync()

    report = run_nudges(world.config, world.storage)

    assert (report.detected, report.singles, report.sent_email, report.sent_push) == (1, 1, 1, 1)
    [mail] = world.smtp.mails
    assert mail.rcpt_tos == [owner]
    assert mail.message["Subject"].endswith("moved to Qualified To Buy")
    # The content is the deal's recommendations for its new stage, as the page shows them.
    view = build_view(recommender, signer, connection=HS, opportunity_id=deal, rep=owner, limit=3)
    assert view.canonical_stage == "qualify"
    assert view.cards
    for card in view.cards:
        assert card.title in mail.text
        assert card.title in mail.html
    # Tracked links: absolute, signed for this rep, deal and content; in both parts.
    tracked = [u for u in _urls(mail.text) if urlsplit(u).path.startswith("/c/")]
    assert len(tracked) == len(view.cards)
    grants = [signer.read_tracked_token(urlsplit(u).path.removeprefix("/c/")) for u in tracked]
    assert {(g.rep, g.opportunity_id, g.connection) for g in grants} == {(owner, deal, HS)}
    assert [g.content_id for g in grants] == [card.content_id for card in view.cards]
    assert all(u in mail.html.replace("&amp;", "&") for u in tracked)
    page = next(u for u in _urls(mail.text) if urlsplit(u).path.startswith("/m/"))
    assert page.startswith(f"{PUBLIC_URL}/m/{HS}/{deal}?t=")
    # The push: one encrypted message, VAPID-signed, that decrypts to the deal and its page.
    [request] = world.push.received
    assert request.path == "/push/phone"
    assert vapid_verified(request)
    payload = phone.decrypt(request)
    assert payload["url"] == page
    assert payload["title"].endswith("→ Qualified To Buy")
    assert view.cards[0].title in payload["body"]

    again = run_nudges(world.config, world.storage)
    world.sync()  # the same data read again stores nothing new
    third = run_nudges(world.config, world.storage)

    assert (again.detected, again.sent_email, again.sent_push) == (0, 0, 0)
    assert (third.detected, third.sent_email, third.sent_push) == (0, 0, 0)
    assert len(world.smtp.mails) == 1
    assert len(world.push.received) == 1


def test_five_hundred_stage_changes_give_one_digest_per_rep(
    tmp_path: Path,
    sandbox_cache: Path,
    sqlite_database_url: str,
    smtp_server: SmtpServer,
    push_service: PushService,
) -> None:
    worlds = start_world(
        tmp_path, sandbox_cache, sqlite_database_url, smtp_server, push_service, size=1500
    )
    world = next(worlds)
    try:
        started(world)
        movable = world.movable()[:500]
        assert len(movable) == 500
        world.set_stages({deal: following for deal, _, following in movable})
        deals = [(deal, owner) for deal, owner, _ in movable]
        world.sync()

        report = run_nudges(world.config, world.storage)

        per_rep = Counter(owner for _, owner in deals)
        assert report.detected == 500
        assert report.digests == len(per_rep)
        assert report.singles == 0
        mails = world.smtp.mails
        assert sorted(m.rcpt_tos[0] for m in mails) == sorted(per_rep)
        with world.storage.sessions() as session:
            names = dict(session.execute(select(CrmOpportunity.crm_id, CrmOpportunity.name)).all())
        for mail in mails:
            rep = mail.rcpt_tos[0]
            count = per_rep[rep]
            assert mail.message["Subject"] == f"{count} of your deals changed stage"
            # The first 25 with their page and content links, the rest by name: every deal.
            assert mail.text.count("Page: ") == min(count, 25)
            assert all(names[deal] in mail.text for deal, owner in deals if owner == rep)
            assert len(mail.message.as_bytes()) < 150_000
        assert run_nudges(world.config, world.storage).sent_email == 0
    finally:
        worlds.close()


def test_quiet_hours_defer_and_deals_closed_or_deleted_meanwhile_are_dropped(
    sqlite_world: World,
) -> None:
    world = sqlite_world
    now = datetime.now(UTC)
    quiet = QuietHours(
        start=(now - timedelta(hours=1)).time().replace(second=0, microsecond=0),
        end=(now + timedelta(hours=1)).time().replace(second=0, microsecond=0),
        timezone="UTC",
    )
    world.config = with_nudges(world.config, nudge_settings(world.smtp.port, quiet_hours=quiet))
    started(world)
    (kept, owner), (won, _), (archived, _) = world.open_deals()[:3]
    world.set_stages({kept: "qualifiedtobuy", won: "qualifiedtobuy", archived: "qualifiedtobuy"})
    world.sync()

    during = run_nudges(world.config, world.storage)
    world.set_stages({won: "closedwon"})
    world.archive(archived)
    world.sync()
    after = run_nudges(world.config, world.storage, now=utcnow() + timedelta(hours=1, minutes=2))

    assert (during.detected, during.sent_email, during.deferred["quiet_hours"]) == (3, 0, 3)
    assert after.dropped == Counter({"closed": 1, "deleted": 1})
    assert after.sent_email == 1
    [mail] = world.smtp.mails
    assert mail.rcpt_tos == [owner]
    assert f"/m/{HS}/{kept}?" in mail.text


def test_closed_and_deleted_deals_are_never_nudged(sqlite_world: World) -> None:
    world = sqlite_world
    started(world)
    (won, _), (archived, _), (kept, owner) = world.open_deals()[:3]
    world.set_stages({won: "closedwon", archived: "qualifiedtobuy", kept: "qualifiedtobuy"})
    world.archive(archived)
    world.sync()

    report = run_nudges(world.config, world.storage)

    assert report.skipped["closed"] == 1
    assert report.detected == 1
    [mail] = world.smtp.mails
    assert mail.rcpt_tos == [owner]
    assert f"/m/{HS}/{kept}?" in mail.text
    with world.storage.sessions() as session:
        ledger = dict(
            session.execute(
                select(NudgeTransition.opportunity_crm_id, NudgeTransition.reason)
            ).all()
        )
    assert ledger[won] == "closed"
    assert ledger[kept] is None
    assert ledger.get(archived) in (None, "deleted")  # never queued


def test_a_change_first_seen_after_max_age_is_never_nudged(sqlite_world: World) -> None:
    """A sync that brings a change in late (a backfill, a node down for days) is history."""
    world = sqlite_world
    started(world)
    deal, _owner = world.open_deals()[0]
    world.set_stages({deal: "qualifiedtobuy"})
    world.sync()

    late = run_nudges(world.config, world.storage, now=utcnow() + timedelta(days=2))
    later = run_nudges(world.config, world.storage)

    assert (late.stale, late.detected, late.sent_email) == (1, 0, 0)
    assert (later.detected, later.sent_email) == (0, 0)
    assert world.smtp.mails == []


def test_rate_limit_turns_a_burst_into_a_digest_and_holds_the_next_nudge(
    sqlite_world: World,
) -> None:
    world = sqlite_world
    world.config = with_nudges(
        world.config, nudge_settings(world.smtp.port, rate_limit=RateLimit(max=1, per="1h"))
    )
    started(world)
    per_owner: dict[str, list[str]] = {}
    for deal, owner, _next in world.movable("appointmentscheduled"):
        per_owner.setdefault(owner, []).append(deal)
    owner, deals = max(per_owner.items(), key=lambda item: len(item[1]))
    assert len(deals) >= 4
    world.set_stages(dict.fromkeys(deals[:3], "qualifiedtobuy"))
    world.sync()
    burst = run_nudges(world.config, world.storage)
    world.set_stages({deals[3]: "qualifiedtobuy"})
    world.sync()
    held = run_nudges(world.config, world.storage)
    freed = run_nudges(world.config, world.storage, now=utcnow() + timedelta(minutes=61))

    assert (burst.digests, burst.singles) == (1, 0)  # 3 changes, 1 nudge allowed: a digest
    assert (held.sent_email, held.deferred["rate_limited"]) == (0, 1)
    assert (freed.singles, freed.sent_email) == (1, 1)
    subjects = [m.message["Subject"] for m in world.smtp.mails]
    assert subjects[0] == "3 of your deals changed stage"
    assert subjects[1].endswith("moved to Qualified To Buy")
    assert {m.rcpt_tos[0] for m in world.smtp.mails} == {owner}


def test_a_refused_delivery_is_retried_and_sent_once(sqlite_world: World) -> None:
    world = sqlite_world
    started(world)
    deal, owner = world.open_deals()[0]
    world.set_stages({deal: "qualifiedtobuy"})
    world.sync()
    world.smtp.sink.refuse_rcpt = "450 4.2.1 mailbox busy, try later"

    refused = run_nudges(world.config, world.storage)
    world.smtp.sink.refuse_rcpt = None
    too_soon = run_nudges(world.config, world.storage)
    retried = run_nudges(world.config, world.storage, now=utcnow() + timedelta(minutes=3))
    again = run_nudges(world.config, world.storage, now=utcnow() + timedelta(minutes=30))

    assert (refused.sent_email, refused.failed["email"], refused.retrying) == (0, 1, 1)
    assert too_soon.sent_email == 0
    assert retried.sent_email == 1
    assert again.sent_email == 0
    assert [m.rcpt_tos for m in world.smtp.mails] == [[owner]]


def test_a_subscription_the_push_service_says_is_gone_is_removed(sqlite_world: World) -> None:
    world = sqlite_world
    started(world)
    deal, owner = world.open_deals()[0]
    world.subscribe(owner, "old-laptop")
    phone = world.subscribe(owner, "phone")
    world.push.answers["/push/old-laptop"] = 410
    world.set_stages({deal: "qualifiedtobuy"})
    world.sync()

    report = run_nudges(world.config, world.storage)

    assert (report.sent_email, report.sent_push) == (1, 1)
    assert sorted(r.path for r in world.push.received) == ["/push/old-laptop", "/push/phone"]
    delivered = next(r for r in world.push.received if r.path == "/push/phone")
    assert phone.decrypt(delivered)["title"].endswith("Qualified To Buy")
    with world.storage.sessions() as session:
        left = session.scalars(select(PushSubscription.endpoint)).all()
    assert left == [phone.endpoint]


def test_a_nudge_left_sending_by_a_dead_process_is_not_sent_again(sqlite_world: World) -> None:
    world = sqlite_world
    with world.storage.sessions.begin() as session:
        session.add(
            Nudge(
                rep_email="ana@example.com",
                kind=NudgeKind.SINGLE,
                state=NudgeState.SENDING,
                channels=["email", "push"],
                results={"email": {"state": "sent"}},
                claimed_by="dead-host:4242",
                claimed_at=utcnow() - timedelta(minutes=10),
            )
        )

    run_nudges(world.config, world.storage)

    assert world.smtp.mails == []
    with world.storage.sessions() as session:
        nudge = session.scalars(select(Nudge)).one()
    assert nudge.state is NudgeState.SENT  # the e-mail went out before the crash
    assert nudge.results["push"]["state"] == "unknown"
    assert "not sent again" in (nudge.last_error or "")


def test_a_pass_waits_while_another_node_holds_the_lease(world: World) -> None:
    started(world)
    deal, owner = world.open_deals()[0]
    world.set_stages({deal: "qualifiedtobuy"})
    world.sync()
    acquire_lease(world.storage.sessions, LEASE_NAME, "other-node:1", timedelta(minutes=5))

    blocked = run_nudges(world.config, world.storage, node_id="this-node:2")
    release_lease(world.storage.sessions, LEASE_NAME, "other-node:1")
    free = run_nudges(world.config, world.storage, node_id="this-node:2")

    assert blocked.busy
    assert blocked.sent_email == 0
    assert free.sent_email == 1
    assert [m.rcpt_tos for m in world.smtp.mails] == [[owner]]


def test_two_passes_at_once_send_each_nudge_once(world: World) -> None:
    """Two threads (the post-sync call and the minute job of one node) and another node."""
    started(world)
    deals = world.open_deals()[:3]
    world.set_stages({deal: "qualifiedtobuy" for deal, _ in deals})
    world.sync()
    barrier = threading.Barrier(3)
    reports: list[NudgeReport] = []

    def node(name: str) -> None:
        barrier.wait()
        reports.append(run_nudges(world.config, world.storage, node_id=name))

    names = ["node-a:1", "node-a:1", "node-b:2"]
    threads = [threading.Thread(target=node, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    run_nudges(world.config, world.storage, node_id="node-b:2")  # whatever was left

    assert sum(r.busy for r in reports) == 2
    owners = Counter(owner for _, owner in deals)
    assert Counter(m.rcpt_tos[0] for m in world.smtp.mails) == owners
    with world.storage.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Nudge)) == len(world.smtp.mails)


def _urls(text: str) -> list[str]:
    return [word for word in text.split() if word.startswith(PUBLIC_URL)]
