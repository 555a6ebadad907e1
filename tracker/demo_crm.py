"""The demo's CRM examples: email templates, the example segments and a mailing rule, ready to try.

A newcomer should find in the CRM what a small shop would have set up: a welcome mail, a win-back
mail with ``recommended(3)``, a newsletter with a ``survey(...)`` row (the one the demo campaign
sent), the four segments of ``schemas/examples/segments/``, and a win-back rule on them. Each goes
through the function the CLI uses (``save_template``, ``add_segment``, ``add_rule``), so each is
checked as a marketer's would be. The rule is left disabled, as every new rule is: the demo sends
no mail.

The campaign's clicks must carry the link ids its email's links have, or the click map could not
put them on the email; ``newsletter_links`` reads them from the saved template with the dashboard's
own preview code (``email_preview``), so the demo clicks exactly the links the email shows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from tracker.crm.rules.define import RuleSpec, add_rule
from tracker.crm.segments import add_segment
from tracker.crm.templates import save_template
from tracker.demo import CAMPAIGN_UTM, DEMO_SITE_NAME, SHOP
from tracker.queries.campaigns.email_preview import email_preview
from tracker.runtime import Runtime

# The example file (schemas/examples/segments/<stem>.json) -> the segment's name in the CRM.
SEGMENTS = {
    "new_this_week": "New this week",
    "opened_not_clicked": "Opened the last campaign, did not click",
    "pricing_no_signup": "Looked at pricing three times, did not sign up",
    "win_back": "Lapsed buyers",
}
RULE_NAME = "Win back lapsed buyers"

_HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
</head>
<body style="margin:0;padding:0;background:#f4f1ec">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0"><tr><td align="center"
 style="padding:24px 12px">
<table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0"
 style="max-width:600px;background:#ffffff;border-radius:6px;font-family:Georgia,serif;color:#2b2622">
<tr><td style="padding:24px 32px;border-bottom:1px solid #ece6dd">
<a href="SHOP_URL/?LINK_UTM" style="font-size:22px;color:#2b2622;text-decoration:none;letter-spacing:1px">
SHOP_NAME</a></td></tr>
"""
_FOOT = """<tr><td style="padding:20px 32px;background:#faf8f5;font-family:Arial,sans-serif;font-size:12px;
 color:#7a716a;border-radius:0 0 6px 6px">
SHOP_NAME &middot; 12 Market Street, Springfield<br>
You get this because you have an account with us.
<a href="{{ unsubscribe_url }}" style="color:#7a716a">Unsubscribe</a>.
</td></tr>
</table>
</td></tr></table>
</body>
</html>
"""
_TEXT = '<tr><td style="padding:28px 32px;font-size:16px;line-height:1.6">\n'
_H1 = '<h1 style="font-size:24px;font-weight:normal;margin:0 0 12px">'
_BUTTON = ('<p style="margin:24px 0"><a href="{href}" style="display:inline-block;padding:12px 22px;'
           'background:#b5532f;color:#ffffff;font-family:Arial,sans-serif;font-size:15px;'
           'text-decoration:none;border-radius:4px">{label}</a></p>\n')
_ROW = '<tr><td style="padding:10px 0;border-bottom:1px solid #ece6dd">\n'


def _email(title: str, body: str) -> str:
    return _HEAD.format(title=title) + _TEXT + body + "</td></tr>\n" + _FOOT


WELCOME = _email("Welcome", _H1 + """Welcome, {{ contact.first_name or "friend" }}!</h1>
<p>Thank you for joining us. We are a small team making shoes, hats and scarves that last, and we
ship every order ourselves.</p>
<p>Here is where most people start:</p>
<ul>
<li><a href="SHOP_URL/products/blue-shoes?LINK_UTM" style="color:#b5532f">Blue shoes</a>, our best seller</li>
<li><a href="SHOP_URL/blog/choosing-running-shoes?LINK_UTM" style="color:#b5532f">How to choose running
shoes</a></li>
</ul>
""" + _BUTTON.format(href="SHOP_URL/products?LINK_UTM", label="Browse the shop") + """\
<p>Questions? Just reply to this email; a person reads every one.</p>
""")

WIN_BACK = _email("We miss you", _H1 + """It has been a while, {{ contact.first_name or "friend" }}</h1>
<p>A lot has come in since your last order. Picked for you from what you looked at:</p>
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">
{% for r in recommended(3, kind="page", path_prefix="/products/") %}
""" + _ROW + """<a href="{{ r.url or "SHOP_URL/products" }}" style="color:#2b2622;font-size:17px">
{{ r.item | replace("/products/", "") | replace("-", " ") | title }}</a></td></tr>
{% endfor %}
</table>
<p>Come back this week and shipping is on us.</p>
""" + _BUTTON.format(href="SHOP_URL/products?LINK_UTM", label="See what is new"))

NEWSLETTER = _email("Autumn sale", _H1 + """Autumn sale: 20% off shoes</h1>
<p>Hello {{ contact.first_name or "there" }}, the leaves are turning and our shoes are on sale until
Sunday.</p>
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">
""" + _ROW + """<a href="SHOP_URL/products/blue-shoes?LINK_UTM" style="color:#2b2622;font-size:17px">
Blue shoes</a>
<span style="color:#b5532f">&nbsp;now 20% off</span></td></tr>
""" + _ROW + """<a href="SHOP_URL/products/red-hat?LINK_UTM" style="color:#2b2622;font-size:17px">Red hat</a>
<span style="color:#7a716a">&nbsp;back in stock</span></td></tr>
</table>
<p>Not sure what goes with what?
<a href="SHOP_URL/blog/autumn-lookbook?LINK_UTM" style="color:#b5532f">Read the autumn lookbook</a>.</p>
</td></tr>
<tr><td style="padding:8px 32px 24px">{{ survey("How likely are you to recommend us?") }}
""")
NEWSLETTER_NAME = "Autumn sale newsletter"
NEWSLETTER_SUBJECT = "Autumn sale: 20% off shoes"

TEMPLATES = [  # name, subject, HTML
    ("Welcome", "Welcome to " + DEMO_SITE_NAME, WELCOME),
    ("Win-back", "{{ contact.first_name or 'Hello' }}, we saved you something", WIN_BACK),
    (NEWSLETTER_NAME, NEWSLETTER_SUBJECT, NEWSLETTER),
]


@dataclass(frozen=True)
class CrmExamples:
    """What ``add_examples`` made; ``newsletter_id`` is the demo campaign's template."""

    templates: list[str]
    segments: list[str]
    rule: str
    newsletter_id: int

    def summary(self) -> str:
        """The demo's output line about them."""
        return (f"CRM examples: templates {', '.join(self.templates)}; segments {', '.join(self.segments)}; "
                f"mailing rule {self.rule!r}, disabled like every new rule (odnos rules enable "
                f"{self.rule!r} turns it on)")


def _shop(html: str) -> str:
    return html.replace("SHOP_URL", SHOP).replace("SHOP_NAME", DEMO_SITE_NAME).replace(
        "LINK_UTM", CAMPAIGN_UTM.replace("&", "&amp;"))


def add_examples(runtime: Runtime) -> CrmExamples:
    """Save the example templates, segments and the (disabled) win-back rule."""
    saved = {name: save_template(runtime.control, name, subject, _shop(html))
             for name, subject, html in TEMPLATES}
    examples = resources.files("schemas") / "examples" / "segments"
    with runtime.control.session() as session:
        for stem, name in SEGMENTS.items():
            add_segment(session, name, json.loads((examples / f"{stem}.json").read_text()))
    add_rule(runtime.control, RuleSpec(name=RULE_NAME, segment=SEGMENTS["win_back"], template="Win-back",
                                       trigger="enter"))
    return CrmExamples(list(saved), list(SEGMENTS.values()), RULE_NAME, saved[NEWSLETTER_NAME].id)


def newsletter_links(runtime: Runtime, template_id: int) -> dict[str, str]:
    """Link id -> target of each tracked link of the newsletter, in the email's order."""
    preview = email_preview(runtime.control, template_id, runtime.settings.effective_public_url())
    if preview is None:
        raise LookupError(f"template {template_id} was saved a moment ago and is gone")
    return {link.link_id: link.target for link in preview.links}
