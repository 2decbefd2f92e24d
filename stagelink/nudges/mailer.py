"""Nudge e-mails over SMTP (stdlib ``smtplib``): multipart text + HTML, one session per run.

Errors are sorted for the retry logic: a 5xx reply about the recipient or the message is
permanent (sending again cannot help); connection problems, timeouts, 4xx replies and
authentication failures (a person may fix the credentials) are worth retrying.
"""

from __future__ import annotations

import smtplib
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from types import TracebackType

import structlog

from connectors.core.errors import StagelinkError
from stagelink.nudges.config import SmtpSettings
from stagelink.nudges.render import RenderedNudge
from stagelink.storage import utcnow

__all__ = ["DeliveryError", "Mailer", "build_message"]

log = structlog.get_logger(__name__)


class DeliveryError(StagelinkError):
    """A message was not delivered; ``permanent`` when trying again cannot help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


def build_message(
    settings: SmtpSettings, *, to: str, rendered: RenderedNudge, nudge_id: int
) -> EmailMessage:
    """The e-mail for one nudge: plain text first, HTML as the preferred alternative."""
    sender = settings.sender
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = sender
    user, _, domain = to.partition("@")
    message["To"] = Address(username=user, domain=domain)
    message["Date"] = format_datetime(utcnow())
    # The nudge id in the Message-ID lets an operator match a complaint to a ledger row.
    message["Message-ID"] = make_msgid(idstring=f"nudge-{nudge_id}", domain=sender.domain)
    # Automatic mail: no out-of-office replies (RFC 3834).
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


class Mailer:
    """Sends messages through the configured server; connects on first use."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def send(self, message: EmailMessage) -> None:
        """Deliver ``message`` to the server, or raise :class:`DeliveryError`."""
        for attempt in (1, 2):
            try:
                smtp = self._connect()
                refused = smtp.send_message(message)
            except smtplib.SMTPServerDisconnected as exc:
                # A server may drop an idle session between messages: reconnect once.
                self._drop()
                if attempt == 2:
                    raise DeliveryError(
                        f"SMTP server disconnected: {exc}", permanent=False
                    ) from None
                continue
            except smtplib.SMTPRecipientsRefused as exc:
                codes = [code for code, _text in exc.recipients.values()]
                permanent = all(code >= 500 for code in codes)
                raise DeliveryError(
                    f"recipient refused: {_replies(exc)}", permanent=permanent
                ) from None
            except smtplib.SMTPAuthenticationError as exc:
                self._drop()
                raise DeliveryError(
                    f"SMTP login refused ({exc.smtp_code}): check nudges.smtp.username/password",
                    permanent=False,
                ) from None
            except smtplib.SMTPResponseException as exc:
                self._reset()
                text = (
                    exc.smtp_error.decode(errors="replace")
                    if isinstance(exc.smtp_error, bytes)
                    else str(exc.smtp_error)
                )
                raise DeliveryError(
                    f"SMTP server answered {exc.smtp_code} {text}", permanent=exc.smtp_code >= 500
                ) from None
            except (smtplib.SMTPException, OSError) as exc:
                self._drop()
                where = f"{self.settings.host}:{self.settings.port}"
                raise DeliveryError(
                    f"cannot send through {where}: {exc}", permanent=False
                ) from None
            if refused:
                # Some recipients refused; a nudge has one, so this is rare: report it.
                raise DeliveryError(f"recipient refused: {refused}", permanent=True)
            return

    def close(self) -> None:
        """End the SMTP session (QUIT), if one is open."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    def __enter__(self) -> Mailer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _connect(self) -> smtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        settings = self.settings
        timeout = settings.timeout.total_seconds()
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if settings.security == "tls":
            smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=timeout)
        try:
            if settings.security == "starttls":
                smtp.starttls(context=context)
            if settings.username is not None and settings.password is not None:
                smtp.login(settings.username, settings.password.reveal())
        except BaseException:
            smtp.close()
            raise
        self._smtp = smtp
        return smtp

    def _reset(self) -> None:
        # After a refused transaction the session can go on with the next message.
        if self._smtp is not None:
            try:
                self._smtp.rset()
            except (smtplib.SMTPException, OSError):
                self._drop()

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()


def _replies(exc: smtplib.SMTPRecipientsRefused) -> str:
    parts = []
    for address, (code, text) in exc.recipients.items():
        reply = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
        parts.append(f"{address}: {code} {reply}")
    return "; ".join(parts)
