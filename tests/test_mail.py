"""Email over real SMTP: an aiosmtpd server on loopback receives what the engine sends."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from scheduler import enrollment, lookups, review
from scheduler.clock import ManualClock
from scheduler.engine import NotSent, OutgoingMessage
from tests.conftest import START
from tests.harness import Transport
from tests.mailbox import Inbox, free_port, mail_config
from web import create_app, journey_context
from web.extensions import db
from web.mailer import FlaskMailer


def mail_app(tmp_path, port, clock=None, **config):
    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'm.sqlite3'}",
            "REDIS_URL": None,
            **mail_config(port),
            **config,
        },
        clock=clock or ManualClock(START),
        dispatcher=Transport(),
    )


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one by one"])
def test_flask_mailer_delivers_multipart_with_our_message_id(tmp_path, pipelining):
    inbox = Inbox(pipelining)
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    app = mail_app(tmp_path, controller.port)
    body = "plain body\n.\n..a line that starts with a dot\n"
    try:
        with app.app_context():
            for n in range(2):  # two messages over one connection
                FlaskMailer(app).send(
                    OutgoingMessage(
                        to=f"sarah{n}@example.com",
                        subject="Hello",
                        text=body,
                        html="<p>html body</p>",
                        message_id="<journey.abc@coach.example>",
                    )
                )
    finally:
        controller.stop()
    assert inbox.commands == ["MAIL journey@coach.example"] * 2
    msg = inbox.messages[0]
    assert inbox.messages[1]["To"] == "sarah1@example.com"
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == body
    assert msg["Message-ID"] == "<journey.abc@coach.example>"
    assert msg["To"] == "sarah0@example.com"
    assert msg.is_multipart()
    assert "html body" in msg.get_body(("html",)).get_content()


def test_an_unreachable_server_fails_fast_and_says_nothing_was_sent(tmp_path):
    app = mail_app(tmp_path, free_port())
    with app.app_context(), pytest.raises(NotSent):
        FlaskMailer(app).send(OutgoingMessage("a@example.com", "s", "t", "<p>h</p>", "<x@y>"))


class Flaky(Inbox):
    """Refuses the first recipient; then takes the next message in and drops the connection
    before answering it (the 250-OK window: the client cannot know the server has it)."""

    def __init__(self, pipelining: bool = True) -> None:
        super().__init__(pipelining)
        self.refuse, self.drop = 1, 1

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            self.refuse -= 1
            return "550 no such mailbox (injected)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        answer = await super().handle_DATA(server, session, envelope)
        if self.drop:
            self.drop -= 1
            server.transport.close()
        return answer


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one by one"])
def test_a_transmission_cut_before_the_servers_answer_is_sent_again_and_recorded(
    tmp_path, pipelining
):
    """A refusal sends nothing and retries; a connection cut after the message went out
    leaves the outbox row SENDING, and the retry sends it again with the same Message-ID and
    records that the client possibly got it twice, with both times."""
    from scheduler import execute
    from scheduler.models import AutomationLog, Email

    inbox = Flaky(pipelining)
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    clock = ManualClock(START)
    app = mail_app(tmp_path, controller.port, clock)
    try:
        with app.app_context():
            db.create_all()
            ctx = journey_context()
            client = enrollment.enroll(
                ctx, name="Sarah", email="sarah@example.com", start_date=date(2026, 1, 5)
            )
            ctx.commit()
            upcoming = lookups.pending(ctx, client, template="REMINDER_UPCOMING", month=1)[0]
            clock.advance(timedelta(days=2))
            execute.run(ctx, upcoming.id, upcoming.version)  # refused: retried in 15 minutes
            row = db.session.scalar(select(Email))
            assert (row.status, row.uncertain_at, inbox.messages) == ("PENDING", None, [])
            for _ in range(2):  # cut after DATA, then sent again
                clock.advance(timedelta(minutes=15))
                db.session.refresh(upcoming)
                execute.run(ctx, upcoming.id, upcoming.version)
            db.session.refresh(row)
            db.session.refresh(upcoming)
            assert row.status == "SENT" and row.attempts == 3
            assert row.uncertain_at == START + timedelta(days=2, minutes=15)
            assert row.sent_at == START + timedelta(days=2, minutes=30)
            assert upcoming.status == "COMPLETED"
            assert "possibly sent twice to sarah@example.com" in upcoming.detail
            statuses = db.session.scalars(
                select(AutomationLog.status).order_by(AutomationLog.id)
            ).all()
            assert statuses[-3:] == ["RETRYING", "RETRYING", "COMPLETED"]
    finally:
        controller.stop()
    ids = [m["Message-ID"] for m in inbox.messages]
    assert len(ids) == 2 and ids[0] == ids[1]


def test_a_journey_email_arrives_over_smtp_once(tmp_path, smtp):
    port, inbox = smtp
    clock = ManualClock(START)
    app = mail_app(tmp_path, port, clock)
    with app.app_context():
        db.create_all()
        ctx = journey_context()
        client = enrollment.enroll(
            ctx,
            name="Sarah <b>Johnson</b>",
            email="sarah@example.com",
            start_date=date(2026, 1, 5),
            timezone="America/New_York",
        )
        ctx.commit()
        upcoming = lookups.pending(ctx, client, template="REMINDER_UPCOMING", month=1)[0]
        clock.advance(timedelta(days=2))
        from scheduler import execute

        execute.run(ctx, upcoming.id, upcoming.version)
        execute.run(ctx, upcoming.id, upcoming.version)  # delivered twice: sent once
        client_id, upcoming_id = client.id, upcoming.id
    [msg] = inbox.messages
    assert msg["Subject"].startswith("Your Month 1")
    html = msg.get_body(("html",)).get_content()
    assert "Sarah &lt;b&gt;Johnson&lt;/b&gt;" in html or "Sarah" in html
    assert "<b>Johnson</b>" not in html
    # Optional emails carry RFC 8058 one-click unsubscribe, pointing at this client's link.
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = msg["List-Unsubscribe"].strip("<>")
    token = link.rsplit("/", 1)[1]
    assert link.startswith("http://127.0.0.1:5000/portal/unsubscribe/")
    assert app.extensions["journey"].links.client_id(token, "unsubscribe") == client_id
    assert msg["X-Journey-Key"] == f"automation:{upcoming_id}:sarah@example.com"


def test_a_whole_journey_arrives_over_smtp_in_order(tmp_path, smtp):
    """Eight months on simulated time: the admin approves each deliverable a day after it is
    generated, the client opens it a day later; every email reaches the server once, in the
    journey's order."""
    from datetime import UTC, datetime

    from scheduler.vocab import DeliverableStatus
    from tests.harness import Harness, ScriptedGenerator

    def utc(day, hour):
        return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)

    port, inbox = smtp
    clock = ManualClock(START)
    app = mail_app(tmp_path, port, clock)
    app.extensions["journey"].horizon = timedelta(days=3650)
    with app.app_context():
        db.create_all()
        transport = app.extensions["journey"].dispatcher
        harness = Harness(app, clock, transport, None, ScriptedGenerator())
        harness.add_admin("coach@example.com")
        client = harness.enroll(date(2026, 1, 5), "Europe/London")
        for month in range(1, 9):
            milestone = client.start_date + timedelta(days=30 * (month - 1))
            harness.run_until(utc(milestone, 10))
            assert harness.deliverable(client, month).status == DeliverableStatus.PENDING_REVIEW
            harness.run_until(utc(milestone + timedelta(days=1), 10))
            harness.do(review.approve, client, month)
            harness.run_until(utc(milestone + timedelta(days=2), 12))
            harness.do(review.open_deliverable, client, month)
        harness.run_until(utc(client.start_date + timedelta(days=240), 12))
    keys = [m["X-Journey-Key"] for m in inbox.messages]
    assert len(keys) == len(set(keys))  # nothing twice
    subjects = [m["Subject"] for m in inbox.messages if m["To"] == "sarah@example.com"]

    def kind(subject):
        if "coming soon" in subject:
            return "upcoming"
        if "is ready" in subject:
            return "ready"
        if "Congratulations" in subject or "halfway" in subject:
            return "celebration"
        return subject

    expected = ["upcoming", "ready", "celebration"] * 8
    assert [kind(s) for s in subjects] == expected
    months = [s.split("Month ")[1].split(":")[0] for s in subjects if "is ready" in s]
    assert months == [str(m) for m in range(1, 9)]
    celebrations = [s for s in subjects if kind(s) == "celebration"]
    assert "halfway" in celebrations[3] and "completed the" in celebrations[7]
    admin = [m["Subject"] for m in inbox.messages if m["To"] == "coach@example.com"]
    assert sum(s.startswith("Review needed") for s in admin) == 8
    assert not any("Client alert" in s for s in admin)


def raw_headers(raw: bytes) -> dict[str, list[str]]:
    """Each header's values as received, unfolded (RFC 5322 2.2.3); every byte ASCII."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    fields: dict[str, list[str]] = {}
    current = None
    for line in lines:
        text = line.decode("ascii")  # raises on any byte that is not ASCII
        if text[:1] in (" ", "\t"):
            fields[current][-1] += text
        else:
            name, _, value = text.partition(":")
            current = name.lower()
            fields.setdefault(current, []).append(value.removeprefix(" "))
    return fields


def test_every_email_arrives_with_headers_as_the_rfcs_want_them(tmp_path, smtp):
    """Every template, sent to a real SMTP server, with a long BASE_URL, a long address and
    non-ASCII names and subjects: the raw bytes have a plain-ASCII List-Unsubscribe URL (RFC
    8058), Subject and From encoded (RFC 2047) and decoding back to what was written, and no
    line over 998 characters (RFC 5322)."""
    from scheduler import digest, emails
    from scheduler.models import Admin, Email
    from scheduler.vocab import OPTIONAL_TEMPLATES, Template

    port, inbox = smtp
    clock = ManualClock(START)
    base = "https://journeys.a-coaching-business-with-a-rather-long-name.example.com/app/portal-v2"
    app = mail_app(
        tmp_path,
        port,
        clock,
        BASE_URL=base,
        MAIL_DEFAULT_SENDER="Journée Café Coaching <journey@coach.example>",
    )
    app.extensions["journey"].base_url = base
    address = "zoe.unal-lukasiewicz.and-her-mailbox@a-rather-long-domain-for-mail.example.com"
    name = "Zoë Ünal-Łukasiewicz 山田"
    with app.app_context():
        db.create_all()
        ctx = journey_context()
        coach = "the.coach-who-runs-this-program@a-rather-long-domain-for-mail.example.com"
        admin = Admin(email=coach, name="Coach", timezone="UTC", active=True)
        admin.created_at = clock.now()
        db.session.add(admin)
        client = enrollment.enroll(
            ctx, name=name, email=address, start_date=date(2025, 12, 1), timezone="Asia/Tokyo"
        )
        ctx.commit()
        sent = {}
        for template in Template:
            if template is Template.WEEKLY_DIGEST:
                rendered = digest.render_for(ctx, admin, clock.now())
                to, client_id = admin.email, None
            else:
                rendered = emails.preview(ctx, template, client)
                to = admin.email if rules_to_admins(template) else address
                client_id = client.id
            row = Email(
                key=f"automation:{len(sent) + 1}:{to}",
                client_id=client_id,
                to_address=to,
                template=template,
                subject=rendered.subject,
                text_body=rendered.text,
                html_body=rendered.html,
                status="PENDING",
                message_id=emails.message_id(f"t:{template}", ctx.engine.mail_sender),
                attempts=1,
                created_at=clock.now(),
            )
            db.session.add(row)
            ctx.commit()
            emails.deliver(ctx, row)
            sent[row.key] = (template, rendered, row.message_id)
        unsubscribe = ctx.engine.links.unsubscribe(client.id)
    assert len(inbox.raw) == len(Template)
    assert any(not s.subject.isascii() for _, s, _ in sent.values())  # emoji, names
    assert len(f"<{unsubscribe}>") > 78
    for raw, parsed in zip(inbox.raw, inbox.messages, strict=True):
        fields = raw_headers(raw)
        assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
        [key] = fields["x-journey-key"]
        template, rendered, message_id = sent[key]
        assert len(key) > 78  # long, unspaced: and still sent as it is
        assert fields["message-id"] == [message_id]
        assert all("=?" not in value for value in fields["x-journey-key"] + fields["message-id"])
        if template in OPTIONAL_TEMPLATES:
            assert fields["list-unsubscribe"] == [f"<{unsubscribe}>"], template
            assert fields["list-unsubscribe-post"] == ["List-Unsubscribe=One-Click"]
        else:
            assert "list-unsubscribe" not in fields, template
        # Non-ASCII travels as RFC 2047 encoded-words and reads back as written.
        assert parsed["Subject"] == rendered.subject, template
        assert parsed["From"].addresses[0].display_name == "Journée Café Coaching"
        assert parsed["From"].addresses[0].addr_spec == "journey@coach.example"
        assert len(fields["date"]) == 1 and len(fields["subject"]) == 1
        assert parsed.get_content_type() == "multipart/alternative"
        for kind, sent_body in (("plain", rendered.text), ("html", rendered.html)):
            received = parsed.get_body((kind,)).get_content().replace("\r\n", "\n")
            assert received.rstrip("\n") == sent_body.rstrip("\n"), (template, kind)


def rules_to_admins(template) -> bool:
    from scheduler import rules

    return rules.to_admins(template)


class Refusing(Inbox):
    """Says no at one step of the transaction, once."""

    def __init__(self, step: str) -> None:
        super().__init__()
        self.step = step

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.step == "MAIL":
            self.step = ""
            return "550 sender refused (injected)"
        return await super().handle_MAIL(server, session, envelope, address, mail_options)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.step == "RCPT":
            self.step = ""
            return "550 no such mailbox (injected)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.step == "DATA":
            self.step = ""
            return "554 message refused (injected)"
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.parametrize("step", ["MAIL", "RCPT", "DATA"])
def test_a_pipelined_refusal_at_any_step_sends_nothing_and_the_next_message_goes(tmp_path, step):
    """MAIL, RCPT and DATA go in one write: a refusal of any of them is NotSent, nothing is
    delivered, and the next message goes."""
    inbox = Refusing(step)
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    app = mail_app(tmp_path, controller.port)
    try:
        with app.app_context():
            mailer = FlaskMailer(app)
            message = OutgoingMessage("a@example.com", "s", "t", "<p>h</p>", "<x@y>")
            with pytest.raises(NotSent, match=r"refused|550"):
                mailer.send(message)
            assert inbox.messages == []
            mailer.send(message)
    finally:
        controller.stop()
    assert len(inbox.messages) == 1
