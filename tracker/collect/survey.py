"""Survey answers: the 0-10 links of ``survey(question)`` in a message, and the comment page.

Link scanners fetch every link of a message, so they would answer every question with every
score. The answer is recorded on the click anyway (a person who clicks 9 and closes the tab has
answered), as a ``survey_response`` event judged like a click: HEAD requests, scanner and bot
agents, clicks too soon after the send and bursts over the message's links (survey links and
ordinary links count together) are stored with ``is_machine = 1`` and their reason, so reports
count the people's answers apart. The thank-you page offers a comment box; its POST, which
needs the signed token and no login, records a ``survey_comment`` event: scanners do not fill
in forms, so a comment also confirms the answer came from a person.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, render_template, request

from tracker.collect.clients import client_of
from tracker.enrich.email_machines import HUMAN, classify_click
from tracker.errors import InvalidToken

bp = Blueprint("survey", __name__)

MAX_COMMENT = 2000
SURVEY_LINK = "survey:{score}"


@bp.route("/r/<token>", methods=["GET", "POST"])
def answer(token: str) -> Any:
    runtime = current_app.extensions["odnos"]
    pipeline = current_app.extensions["odnos.pipeline"]
    try:
        given = pipeline.codec.read_survey(token)
    except InvalidToken as exc:
        return render_template("survey.html", state="invalid", message=exc.message), exc.status
    client = client_of(request.environ, runtime.proxies)
    props = {"question": given.question, "score": str(given.score)}
    link_id = SURVEY_LINK.format(score=given.score)
    now = time.time()
    # _email_row is the pipeline's one way to build an email event (device, country, campaign of the
    # message id); a public name for it is the pipeline owner's call.
    if request.method != "POST":
        verdict = classify_click(client.user_agent, client.method, given.sent_at, now,
                                 str(given.message_id), link_id, given.contact_id, bursts=pipeline.bursts)
        pipeline.queue.submit([pipeline._email_row("survey_response", given.contact_id, given.message_id,
                                                   client, verdict, now, props=props, source="survey",
                                                   link_id=link_id)])
        return render_template("survey.html", state="thanks", question=given.question, score=given.score)
    comment = " ".join(request.form.get("comment", "").split())
    if not comment:
        return render_template("survey.html", state="thanks", question=given.question, score=given.score,
                               message="Write a comment before sending, or just close this page."), 400
    if len(comment) > MAX_COMMENT:
        return render_template("survey.html", state="thanks", question=given.question, score=given.score,
                               message=f"Please keep the comment under {MAX_COMMENT} characters."), 413
    pipeline.queue.submit([pipeline._email_row("survey_comment", given.contact_id, given.message_id, client,
                                               HUMAN, now, props={**props, "comment": comment},
                                               source="survey", link_id=link_id)])
    return render_template("survey.html", state="done")
