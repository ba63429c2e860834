"""A mail from the institute written from templates: the sender's identity filled in once."""

from collections.abc import Sequence

from merumaga import charset, mime, outgoing
from merumaga.institute.services import sender_identity


def templated_mail(
    template: str,
    context: dict,
    *,
    to: str,
    language: str,
    preferred_charset: str = charset.UTF8,
    headers: Sequence[tuple[str, str]] = (),
    attachments: Sequence[mime.Attachment] = (),
    about: str = "",
) -> outgoing.Mail:
    """The mail of the three templates `template` ("<app>/mail/<kind>", see outgoing.render),
    from the institute (its name and address in From, its identity in the footer)."""
    identity = sender_identity()
    subject, text, html = outgoing.render(template, {**context, "institute": identity}, language)
    return outgoing.Mail(
        kind=template.rsplit("/", 1)[-1],
        sender_name=identity.organisation_name,
        sender_address=identity.from_email,
        to=to,
        subject=subject,
        text=text,
        html=html,
        preferred_charset=preferred_charset,
        headers=headers,
        attachments=attachments,
        about=about,
    )
