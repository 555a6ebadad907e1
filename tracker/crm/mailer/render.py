"""Compile and render email templates (subject, HTML, optional text) in Jinja2's sandbox.

Templates are written by marketers and run for every contact, so they are never trusted: the
``ImmutableSandboxedEnvironment`` refuses attributes that start with ``_`` (``''.__class__``) and any
change to the values passed in; ``StrictUndefined`` makes a misspelt name an error instead of an
empty string in thousands of sent messages; ``*`` and ``**`` are bounded so a template cannot
build a gigabyte string. Every problem is found at save time where it can be: syntax, names
that are neither a contact field nor a helper, underscore attributes (even in a branch a sample
render would not take), and whatever a render for a sample contact raises. ``compile_template``
runs all of that, so the same checks guard saving and sending.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2 import Template as JinjaTemplate
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.exceptions import TemplateError as JinjaError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tracker.errors import OdnosError

# What a template may name: the contact, the unsubscribe link and the helpers of helpers.py.
NAMES = ("contact", "unsubscribe_url", "recommended", "survey")
MAX_SUBJECT = 500
_MAX_SEQUENCE = 100_000  # longest string or list ``*`` may make
_MAX_EXPONENT = 100


class TemplateError(OdnosError):
    """A template cannot be used: bad syntax, an unknown name, a sandbox escape, or a failed render.

    ``part`` says which of subject, html and text is at fault; the message has the line number.
    """

    code = "bad_template"
    status = 422

    def __init__(self, message: str, *, part: str, code: str | None = None) -> None:
        super().__init__(f"template {part}: {message}", code=code)
        self.part = part


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with ``*`` and ``**`` bounded (Jinja's own sandbox bounds ``range`` only)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if isinstance(right, int | float) and abs(right) > _MAX_EXPONENT:
                raise SecurityError(f"exponent {right} is over {_MAX_EXPONENT}")
            return operator.pow(left, right)
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(times, int) and \
                    len(seq) * times > _MAX_SEQUENCE:
                raise SecurityError(f"a repeated sequence would be over {_MAX_SEQUENCE} items")
        return operator.mul(left, right)


def _environment(autoescape: bool) -> _Sandbox:
    return _Sandbox(autoescape=autoescape, undefined=StrictUndefined, keep_trailing_newline=True,
                    auto_reload=False, cache_size=0)


_HTML = _environment(autoescape=True)
_TEXT = _environment(autoescape=False)


@dataclass(frozen=True)
class Rendered:
    """One contact's subject, HTML and text (text '' when the template has none)."""

    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class CompiledTemplate:
    """A checked template, ready to render for any number of contacts."""

    subject_source: str
    html_source: str
    text_source: str
    names: Mapping[str, frozenset[str]]  # part -> the names it uses
    _parts: Mapping[str, JinjaTemplate]

    def uses(self, name: str, part: str | None = None) -> bool:
        """Does ``part`` (any part when None) use ``name``?"""
        parts = self.names.values() if part is None else [self.names.get(part, frozenset())]
        return any(name in used for used in parts)

    @property
    def has_text(self) -> bool:
        return "text" in self._parts

    def render(self, context: Mapping[str, Any]) -> Rendered:
        """Render every part; a failure raises ``TemplateError`` naming the part and the line."""
        subject = " ".join(_run(self._parts["subject"], context, "subject").split())
        html = _run(self._parts["html"], context, "html")
        text = _run(self._parts["text"], context, "text") if self.has_text else ""
        return Rendered(subject, html, text)


def compile_template(subject: str, html: str, text: str = "", *,
                     sample: Callable[[], Mapping[str, Any]] | None = None) -> CompiledTemplate:
    """Check and compile a template's parts; raise ``TemplateError`` with the first problem found.

    ``sample`` builds a render context for a trial render (``helpers.sample_context`` in practice),
    so what only a render can tell (a sandbox refusal, a helper called wrongly) fails here too.
    """
    if not subject.strip():
        raise TemplateError("the subject is empty", part="subject")
    if len(subject) > MAX_SUBJECT:
        raise TemplateError(f"the subject is {len(subject)} characters, at most {MAX_SUBJECT}",
                            part="subject")
    if not html.strip():
        raise TemplateError("the HTML is empty", part="html")
    names: dict[str, frozenset[str]] = {}
    parts: dict[str, JinjaTemplate] = {}
    for part, source, env in (("subject", subject, _TEXT), ("html", html, _HTML), ("text", text, _TEXT)):
        if part == "text" and not source.strip():
            continue
        ast = _parse(env, source, part)
        used = meta.find_undeclared_variables(ast)
        unknown = sorted(used - set(NAMES))
        if unknown:
            raise TemplateError(f"unknown name {unknown[0]!r}; a template may use {', '.join(NAMES)} "
                                "(e.g. {{ contact.first_name }}, {{ contact.attrs.city }})",
                                part=part, code="unknown_name")
        _refuse_private(ast, part)
        names[part] = frozenset(used)
        parts[part] = env.from_string(ast)
    template = CompiledTemplate(subject, html, text, names, parts)
    if sample is not None:
        template.render(sample())
    return template


def _parse(env: _Sandbox, source: str, part: str) -> nodes.Template:
    try:
        return env.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"syntax error on line {exc.lineno}: {exc.message}", part=part,
                            code="template_syntax") from None


def _refuse_private(ast: nodes.Template, part: str) -> None:
    """Refuse ``x.__class__``, ``x['_secret']`` and the like wherever they appear, taken or not."""
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            attr = node.attr
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            attr = node.arg.value
        else:
            continue
        if attr.startswith("_"):
            raise TemplateError(f"line {node.lineno}: {attr!r} is not allowed (names starting with _ "
                                "reach Python internals)", part=part, code="template_unsafe")


def _run(template: JinjaTemplate, context: Mapping[str, Any], part: str) -> str:
    try:
        return template.render(context)
    except SecurityError as exc:
        raise TemplateError(f"refused by the sandbox: {exc}", part=part, code="template_unsafe") from None
    except UndefinedError as exc:
        raise TemplateError(f"{exc.message} (line {_line(exc)}); give a default with "
                            "{{ value | default('...') }}", part=part, code="undefined") from None
    except OdnosError as exc:
        raise TemplateError(exc.message, part=part, code=exc.code) from None
    except (JinjaError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise TemplateError(f"render failed (line {_line(exc)}): {exc}", part=part,
                            code="template_render") from None


def _line(exc: BaseException) -> str:
    """The template line a render error happened on, from the traceback Jinja rewrites."""
    tb = exc.__traceback__
    line = "?"
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = str(tb.tb_lineno)
        tb = tb.tb_next
    return line
