"""The hostile corpus of the hand-off: assignments, accept / return, the CRM delivery log, the accepted export,
customer transfers, user edits (sdr_console/api/) and the sales mobile inbox (/m/, sdr_console/mobile/).

The corpus signs in with the admin service token: a decision needs a person, so even a well-formed accept or
return is refused (400), and changes nothing. The /m/ pages use the console's session cookie only; the corpus
has none, so their malformed cases are the ones refused before any session is looked at (sign-in links, OAuth
callbacks, request lines) and the rest must simply not fail.
"""

from __future__ import annotations

from dataclasses import replace

from tests.bot.web.hostile_corpus import (
    KIB,
    SERVER_LIMIT,
    Case,
    auth_cases,
    body_cases,
    dumps,
    heads,
    json_cases,
    path_cases,
    query_cases,
)

DECISION_LIMIT = 16 * KIB  # sdr_console/api/handoff_decisions.py, assignments.py, share.py MAX_BODY
PEOPLE_LIMIT = 16 * KIB  # sdr_console/api/people.py MAX_BODY
VALID_RETURN = {"reason": "预算不足", "text": "明年再说"}
VALID_TRANSFER = {"from_user": "nobody-here", "to_user": "nobody-either"}


def decision_cases() -> list[Case]:
    """Accept, return, assign by hand and content links on the seeded lead."""
    accept, ret = ("POST", "/api/leads/{lead_id}/accept"), ("POST", "/api/leads/{lead_id}/return")
    assign, share = ("POST", "/api/leads/{lead_id}/assign"), ("POST", "/api/leads/{lead_id}/content-links")
    return_bodies = {
        "reason missing": {"text": "x"}, "reason unknown": {"reason": "太贵了"}, "reason a number": {"reason": 1},
        "reason 41 characters": {"reason": "预" * 41}, "reason NUL": {"reason": "预算不足\u0000"},
        "text 501 characters": {**VALID_RETURN, "text": "说" * 501}, "text a list": {**VALID_RETURN, "text": ["x"]},
        "text with ESC": {**VALID_RETURN, "text": "a\u001bb"},
        "text lone surrogate": {**VALID_RETURN, "text": "\udfff"},
        "unknown field": {**VALID_RETURN, "user_id": 1},
        "well formed, but no person decides": VALID_RETURN,
    }
    assign_bodies = {
        "user missing": {}, "user unknown": {"user": "nobody-here"}, "user id unknown": {"user": 99999},
        "user a float": {"user": 1.5}, "user true": {"user": True}, "user a list": {"user": ["sales"]},
        "user 2^64": {"user": 2**64}, "user NUL": {"user": "a\u0000"}, "unknown field": {"user": "x", "rule": "r"},
    }
    share_bodies = {
        "content_id missing": {}, "content_id unknown": {"content_id": "nope"}, "content_id empty": {"content_id": ""},
        "content_id 101 characters": {"content_id": "c" * 101}, "content_id a number": {"content_id": 1},
    }
    cases = (path_cases(accept, "/api/leads/{}/accept") + auth_cases(accept, b"/api/leads/{lead}/accept")
             + [Case(accept, "no person decides", b"/api/leads/{lead}/accept")])
    for route, suffix, bodies, valid in ((ret, "return", return_bodies, VALID_RETURN),
                                         (assign, "assign", assign_bodies, {"user": "nobody-here"}),
                                         (share, "content-links", share_bodies, {"content_id": "seeded"})):
        target = b"/api/leads/{lead}/" + suffix.encode()
        cases += (body_cases(route, target, DECISION_LIMIT) + json_cases(route, target, bodies)
                  + path_cases(route, "/api/leads/{}/" + suffix, dumps(valid))
                  + auth_cases(route, target, dumps(valid)))
    return cases


def log_cases() -> list[Case]:
    """Assignments, the CRM delivery log and its resend, the accepted export, return reasons."""
    listing, deliveries = ("GET", "/api/assignments"), ("GET", "/api/webhook-deliveries")
    export, reasons = ("GET", "/api/exports/accepted.csv"), ("GET", "/api/handoff/return-reasons")
    resend = ("POST", "/api/webhook-deliveries/{delivery_id}/resend")
    gets = (query_cases(listing, b"/api/assignments", ("limit", "offset", "user", "lead"))
            + [Case(listing, "status unknown", b"/api/assignments?status=lost")]
            + auth_cases(listing, b"/api/assignments")
            + query_cases(deliveries, b"/api/webhook-deliveries", ("limit", "lead_id", "before_id"))
            + [Case(deliveries, "status unknown", b"/api/webhook-deliveries?status=lost")]
            + auth_cases(deliveries, b"/api/webhook-deliveries") + auth_cases(reasons, b"/api/handoff/return-reasons")
            + [Case(reasons, "junk query", b"/api/handoff/return-reasons?x=%FF%00", expect="ok")]
            + auth_cases(export, b"/api/exports/accepted.csv"))
    # A harmless query exports (and audits): only the refused ones here.
    gets += [Case(export, f"{p} {name}", b"/api/exports/accepted.csv?" + p.encode() + b"=" + value)
             for p in ("since", "until")
             for name, value in {"not a date": b"tomorrow", "no day": b"2026-13", "NUL": b"%00",
                                 "invalid utf-8": b"%FF", "year 0": b"0000-01-01"}.items()]
    gets.append(Case(export, "since after until", b"/api/exports/accepted.csv?since=2026-12-02&until=2026-12-01"))
    posts = path_cases(resend, "/api/webhook-deliveries/{}/resend") + auth_cases(
        resend, b"/api/webhook-deliveries/1/resend")
    return gets + heads(gets) + posts


def people_handoff_cases() -> list[Case]:
    """Customer transfers and user edits (card style, WeCom userid)."""
    transfer, transfer_get = ("POST", "/api/customer-transfers"), ("GET", "/api/customer-transfers/{transfer_id}")
    patch = ("PATCH", "/api/users/{user_id}")
    transfer_bodies = {
        "from_user missing": {"to_user": "x"}, "to_user missing": {"from_user": "x"},
        "users unknown": VALID_TRANSFER, "from_user a list": {**VALID_TRANSFER, "from_user": ["x"]},
        "leads empty": {**VALID_TRANSFER, "leads": []}, "leads strings": {**VALID_TRANSFER, "leads": ["a"]},
        "101 leads": {**VALID_TRANSFER, "leads": list(range(1, 10_002))},
        "lead 0": {**VALID_TRANSFER, "leads": [0]}, "message empty": {**VALID_TRANSFER, "message": ""},
        "message NUL": {**VALID_TRANSFER, "message": "a\u0000"}, "resigned a string": {**VALID_TRANSFER,
                                                                                        "resigned": "yes"},
    }
    patch_bodies = {
        "nothing": {}, "card_style unknown": {"card_style": "html"}, "card_style a number": {"card_style": 1},
        "role": {"role": "admin"}, "password": {"password": "long enough password"},
        "display_name blank": {"display_name": "  "}, "display_name 101 characters": {"display_name": "名" * 101},
        "wecom_userid an object": {"wecom_userid": {"a": 1}}, "wecom_userid NUL": {"wecom_userid": "a\u0000"},
    }
    valid_patch = dumps({"card_style": "textcard"})
    posts = (body_cases(transfer, b"/api/customer-transfers", SERVER_LIMIT)
             + json_cases(transfer, b"/api/customer-transfers", transfer_bodies)
             + auth_cases(transfer, b"/api/customer-transfers", dumps(VALID_TRANSFER))
             + body_cases(patch, b"/api/users/1", PEOPLE_LIMIT) + json_cases(patch, b"/api/users/1", patch_bodies)
             + path_cases(patch, "/api/users/{}", valid_patch) + auth_cases(patch, b"/api/users/1", valid_patch))
    gets = path_cases(transfer_get, "/api/customer-transfers/{}") + auth_cases(transfer_get,
                                                                                b"/api/customer-transfers/1")
    return posts + gets + heads(gets)


def mobile_cases() -> list[Case]:
    """The /m/ pages (HTML: no JSON shape) and the JS-SDK signature."""
    home, lead, chat = ("GET", "/m/"), ("GET", "/m/leads/{lead_id}"), ("GET", "/m/chat")
    chat_lead, sign = ("GET", "/m/chat/lead"), ("GET", "/m/api/jssdk-signature")
    login, auth, callback = ("GET", "/m/login"), ("GET", "/m/auth"), ("GET", "/m/auth/callback")
    forged = ((b"Cookie", b"lr_console=\xff"),)
    cases = [
        Case(login, "no token", b"/m/login"),
        Case(login, "forged token", b"/m/login?token=1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        Case(login, "not base64", b"/m/login?token=1.%%%"),
        Case(login, "token 5000 characters", b"/m/login?token=1." + b"A" * 5000),
        Case(login, "invalid utf-8", b"/m/login?token=%FF"),
        Case(callback, "no code", b"/m/auth/callback?state=x"),
        Case(callback, "forged state", b"/m/auth/callback?code=CODE&state=forged"),
        Case(callback, "code 5000 characters", b"/m/auth/callback?code=" + b"c" * 5000 + b"&state=x"),
        Case(callback, "NUL code", b"/m/auth/callback?code=%00&state=x"),
        Case(auth, "next elsewhere", b"/m/auth?next=https://evil.example/", expect="ok"),
        Case(auth, "next protocol-relative", b"/m/auth?next=//evil.example/m/", expect="ok"),
        Case(auth, "raw invalid utf-8 in the request line", b"/m/auth?\xff"),
        Case(sign, "signed out", b"/m/api/jssdk-signature?url=http://127.0.0.1/m/chat"),
        Case(sign, "forged session cookie", b"/m/api/jssdk-signature?url=http://127.0.0.1/m/chat", headers=forged),
        Case(sign, "bearer token, no session", b"/m/api/jssdk-signature?url=http://127.0.0.1/m/chat", auth="api"),
        Case(chat_lead, "raw invalid utf-8", b"/m/chat/lead?\xff"),
        Case(chat_lead, "signed out, junk query", b"/m/chat/lead?external_userid=%00&x=%FF", expect="ok"),
        Case(home, "raw invalid utf-8", b"/m/?\xff"),
        Case(home, "signed out, junk query", b"/m/?tab=%FF&before=%00", expect="ok"),
        Case(home, "forged session cookie", b"/m/?tab=pending", headers=forged, expect="ok"),
        Case(chat, "raw invalid utf-8", b"/m/chat?\xff"),
        Case(chat, "signed out, junk query", b"/m/chat?x=%00", expect="ok"),
        Case(lead, "raw invalid utf-8 id", b"/m/leads/\xff"),
        Case(lead, "signed out", b"/m/leads/{lead}", expect="ok"),
        Case(lead, "forged session cookie", b"/m/leads/{lead}", headers=forged, expect="ok"),
    ]
    cases = [replace(c, auth=c.auth if c.auth == "api" else "none", shape=False) for c in cases]
    return cases + heads(cases, per_route=3)


def handoff_corpus() -> list[Case]:
    return decision_cases() + log_cases() + people_handoff_cases() + mobile_cases()
