"""Templates: the sandbox, strict names, clear errors at save time and at send time, the CLI.

Each refused template is refused by ``check_template`` (the save path) and by ``compile_saved``
(the send path, for a row written behind odnos's back), and ``odnos templates add`` refuses it with
one line and exit code 2, leaving nothing saved.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.processes import odnos_env, run_odnos
from tracker.control.db import ControlPlane
from tracker.control.models import Template
from tracker.crm.mailer.helpers import sample_context
from tracker.crm.mailer.render import TemplateError, compile_template
from tracker.crm.model import Contact
from tracker.crm.templates import (
    check_template,
    compile_saved,
    get_template,
    list_templates,
    save_template,
)
from tracker.errors import ConfigError, InvalidToken, NotFound, OdnosError
from tracker.settings import load_settings
from tracker.tokens import TokenCodec

CODEC = TokenCodec(["render-test-key-" + "r" * 16])
ANN = Contact(contact_id="a1", email="ann@example.com", first_name="Ann <b>", last_name="Lee",
              attrs={"city": "Paris & Co"})

BAD = [
    ("escape", "{{ ''.__class__.__mro__[1].__subclasses__() }}", "template_unsafe"),
    ("escape_in_untaken_branch", "{% if false %}{{ contact.__class__ }}{% endif %}", "template_unsafe"),
    ("escape_by_item", "{{ contact['__init__'] }}", "template_unsafe"),
    ("escape_by_filter", "{{ contact | attr('__class__') }}", "template_unsafe"),
    ("unknown_helper", "{{ coupon_code(3) }}", "unknown_name"),
    ("unknown_name", "Hello {{ first_name }}", "unknown_name"),
    ("syntax", "{% for x in recommended(3) %}{{ x }}", "template_syntax"),
    ("syntax_expression", "{{ contact.first_name ", "template_syntax"),
    ("huge_string", "{{ 'x' * 100000000 }}", "template_unsafe"),
    ("mutation", "{{ contact.attrs.update({'a': 1}) }}", "template_unsafe"),
    ("bad_helper_call", "{{ recommended(500) }}", "bad_helper_call"),
    ("empty_survey", "{{ survey('') }}", "bad_helper_call"),
]


def _context(contact: Contact = ANN) -> dict:
    return sample_context(CODEC, "http://t.example.test") | {"contact": contact}


@pytest.mark.parametrize(("case", "html", "code"), BAD, ids=[case for case, _, _ in BAD])
def test_bad_templates_are_refused_at_save_and_send(case: str, html: str, code: str) -> None:
    with pytest.raises(TemplateError) as saved:
        check_template("Hi", f"<p>{html}</p>")
    assert saved.value.code == code
    assert saved.value.part == "html"
    assert saved.value.message.startswith("template html: ")
    with pytest.raises(TemplateError) as sent:
        compile_saved(Template(name=case, subject="Hi", html=f"<p>{html}</p>", text=""))
    assert sent.value.code == code


def test_errors_name_the_part_and_line() -> None:
    with pytest.raises(TemplateError, match=r"template subject: unknown name 'nme'"):
        check_template("Hi {{ nme }}", "<p>x</p>")
    with pytest.raises(TemplateError, match=r"template text: syntax error on line 3"):
        check_template("Hi", "<p>x</p>", "a\nb\n{% if %}")
    with pytest.raises(TemplateError, match="subject is empty"):
        check_template("  ", "<p>x</p>")


def test_render_escapes_html_not_text_and_keeps_subject_on_one_line() -> None:
    template = check_template("Hi {{ contact.first_name }}\n  and welcome",
                              "<p>{{ contact.first_name }} from {{ contact.attrs.city }}</p>",
                              "{{ contact.first_name }} from {{ contact.attrs.city }}")
    rendered = template.render(_context())
    assert rendered.subject == "Hi Ann <b> and welcome"
    assert rendered.html == "<p>Ann &lt;b&gt; from Paris &amp; Co</p>"
    assert rendered.text == "Ann <b> from Paris & Co"


def test_missing_attribute_fails_for_that_contact_unless_defaulted() -> None:
    strict = check_template("Hi", "<p>{{ contact.attrs.plan }}</p>")  # the sample contact has every attr
    with pytest.raises(TemplateError, match="plan") as failed:
        strict.render(_context())
    assert failed.value.code == "undefined"
    lenient = check_template("Hi", "<p>{{ contact.attrs.plan | default('free') }}</p>")
    assert lenient.render(_context()).html == "<p>free</p>"


def test_names_used_are_known_to_the_mailer() -> None:
    template = compile_template("Hi", "<a href='{{ unsubscribe_url }}'>x</a>", "{{ contact.email }}")
    assert template.uses("unsubscribe_url", "html")
    assert not template.uses("unsubscribe_url", "text")
    assert template.has_text
    assert not compile_template("Hi", "<p>x</p>").has_text


def test_survey_helper_makes_eleven_signed_answers() -> None:
    html = check_template("Hi", "{{ survey('How likely are you to recommend us?') }}").render(_context()).html
    tokens = [part.split('"', 1)[0] for part in html.split('href="http://t.example.test/r/')[1:]]
    answers = [CODEC.read_survey(token) for token in tokens]
    assert [a.score for a in answers] == list(range(11))
    assert {a.question for a in answers} == {"How likely are you to recommend us?"}
    assert "0 = Not likely, 10 = Very likely" in html


def test_save_get_list_and_replace(tmp_path: Path) -> None:
    control = ControlPlane(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    control.migrate()
    first = save_template(control, "welcome", "Hi {{ contact.first_name }}", "<p>one</p>")
    assert get_template(control, "welcome").html == "<p>one</p>"
    assert get_template(control, first.id).name == "welcome"
    with pytest.raises(OdnosError) as exists:
        save_template(control, "welcome", "Hi", "<p>two</p>")
    assert (exists.value.code, exists.value.status) == ("exists", 409)
    again = save_template(control, "welcome", "Hi", "<p>two</p>", "plain", replace=True)
    assert again.id == first.id
    stored = get_template(control, "welcome")
    assert (stored.html, stored.text) == ("<p>two</p>", "plain")
    with pytest.raises(TemplateError):
        save_template(control, "evil", "Hi", "{{ ''.__class__ }}")
    assert [t.name for t in list_templates(control)] == ["welcome"]
    with pytest.raises(NotFound):
        get_template(control, "evil")
    control.dispose()


def test_cli_adds_lists_and_refuses(tmp_path: Path) -> None:
    env = odnos_env(tmp_path / "data")
    good = tmp_path / "good.html"
    good.write_text("<p>Hello {{ contact.first_name | default('there') }}</p>", encoding="utf-8")
    text = tmp_path / "good.txt"
    text.write_text("Hello {{ contact.first_name | default('there') }}", encoding="utf-8")
    added = run_odnos("templates", "add", "welcome", "--subject", "Welcome", "--html", str(good),
                      "--text", str(text), env=env)
    assert added.returncode == 0, added.stderr
    template_id = added.stdout.strip().splitlines()[-1]
    assert template_id.isdigit()

    evil = tmp_path / "evil.html"
    evil.write_text("{{ ''.__class__.__mro__ }}", encoding="utf-8")
    refused = run_odnos("templates", "add", "evil", "--subject", "x", "--html", str(evil), env=env)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "odnos: error: template html: line 1: '__mro__' is not allowed (names starting with _ reach "
        "Python internals)"]
    broken = tmp_path / "broken.html"
    broken.write_bytes(b"<p>caf\xe9</p>")
    not_utf8 = run_odnos("templates", "add", "latin", "--subject", "x", "--html", str(broken), env=env)
    assert not_utf8.returncode == 2
    assert "is not UTF-8" in not_utf8.stderr
    syntax = tmp_path / "syntax.html"
    syntax.write_text("<p>{% if contact.first_name %}</p>", encoding="utf-8")
    bad_syntax = run_odnos("templates", "add", "syntax", "--subject", "x", "--html", str(syntax), env=env)
    assert bad_syntax.returncode == 2
    assert "syntax error on line 1" in bad_syntax.stderr

    listed = run_odnos("templates", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.strip().splitlines()]
    assert [(r[0], r[1], r[2]) for r in rows] == [(template_id, "welcome", "Welcome")]


def test_survey_tokens_are_their_own_kind_and_checked() -> None:
    token = CODEC.survey("a1", "7.3", "How was it?", 10)
    assert (CODEC.read_survey(token).score, CODEC.read_survey(token).question) == (10, "How was it?")
    for read in (CODEC.read_click, CODEC.read_open, CODEC.read_unsubscribe):
        with pytest.raises(InvalidToken):
            read(token)
    with pytest.raises(InvalidToken):
        CODEC.read_survey(token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    with pytest.raises(InvalidToken):
        CODEC.read_survey(CODEC.click("a1", "7.3", "x", "https://example.com/"))
    for score in (-1, 11, True, 7.5):
        with pytest.raises(ValueError, match="0 to 10"):
            CODEC.survey("a1", "7.3", "How was it?", score)
    with pytest.raises(ValueError, match="1 to 200"):
        CODEC.survey("a1", "7.3", "x" * 201, 5)


@pytest.mark.parametrize("value", ["nonsense", "Shop <news@shop>", "a@b.c\nBcc: x@y.z"])
def test_mail_from_setting_is_validated(value: str) -> None:
    with pytest.raises(ConfigError, match="ODNOS_MAIL_FROM"):
        load_settings(environ={"ODNOS_MAIL_FROM": value})
    assert load_settings(environ={"ODNOS_MAIL_FROM": "Shop <news@shop.example.com>"}).mail_from == \
        "Shop <news@shop.example.com>"
