"""Email templates in the control plane: save them checked, read them back, list them.

A template is checked when it is saved (``check_template``: syntax, names, sandbox escapes, a trial
render for a sample contact) and again when it is sent, with the same function, so a template that
would fail for every contact is refused before anyone can use it, and one changed behind odnos's
back is still refused before a message leaves.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tracker.control.db import ControlPlane
from tracker.control.models import Template
from tracker.crm.mailer.helpers import sample_context
from tracker.crm.mailer.render import CompiledTemplate, compile_template
from tracker.errors import NotFound, OdnosError
from tracker.tokens import TokenCodec

MAX_NAME = 200
# The trial render signs sample links nobody receives; any key will do, and none is a real one.
_SAMPLE_CODEC = TokenCodec(["odnos-template-trial-render-only"])
_SAMPLE_BASE = "https://odnos.invalid"


def check_template(subject: str, html: str, text: str = "") -> CompiledTemplate:
    """Compile and trial-render a template; raise ``TemplateError`` saying what is wrong and where."""
    return compile_template(subject, html, text, sample=lambda: sample_context(_SAMPLE_CODEC, _SAMPLE_BASE))


def compile_saved(template: Template) -> CompiledTemplate:
    """The checked, compiled form of a saved template (what the mailer renders)."""
    return check_template(template.subject, template.html, template.text)


def save_template(control: ControlPlane, name: str, subject: str, html: str, text: str = "", *,
                  replace: bool = False) -> Template:
    """Check and save a template under ``name``; an existing name is an error unless ``replace``."""
    name = name.strip()
    if not name or len(name) > MAX_NAME or any(ch in name for ch in "\r\n\t"):
        raise OdnosError(f"a template name is 1 to {MAX_NAME} characters on one line", code="bad_name")
    check_template(subject, html, text)
    with control.session() as session:
        found = session.scalar(select(Template).where(Template.name == name))
        if found is not None and not replace:
            raise OdnosError(f"template {name!r} exists (id {found.id}); pass --replace to change it",
                             code="exists", status=409)
        if found is None:
            found = Template(name=name)
            session.add(found)
        found.subject, found.html, found.text = subject, html, text
        try:
            session.flush()
        except IntegrityError:
            raise OdnosError(f"template {name!r} was just created by someone else; try again",
                             code="exists", status=409) from None
        return found


def get_template(control: ControlPlane, name_or_id: str | int) -> Template:
    """A template by id or by name; ``NotFound`` names what was looked for."""
    with control.sessions() as session:
        found = None
        if isinstance(name_or_id, int) or str(name_or_id).isdigit():
            found = session.get(Template, int(name_or_id))
        if found is None:
            found = session.scalar(select(Template).where(Template.name == str(name_or_id)))
    if found is None:
        raise NotFound(f"no template {name_or_id!r}; list them with `odnos templates list`")
    return found


def list_templates(control: ControlPlane) -> list[Template]:
    """Every template, by name."""
    with control.sessions() as session:
        return list(session.scalars(select(Template).order_by(Template.name)))
