"""Whether a console page may be shown to its user (the rule table, leads/access.py) and the 403 page otherwise;
which leads it shows comes from sdr_console/api/scoping.py owner_ids, as for the JSON API."""

from __future__ import annotations

from aiohttp import web

from leads import access
from sdr_console.web.audit_log import DENIED, audit
from sdr_console.web.guard import SignedIn
from sdr_console.web.render import render

REFUSED = "您的角色无权查看此页面。如需访问，请联系管理员。"


def may(role: str, action: str) -> bool:
    return access.scope(role, action) is not None


async def refuse(request: web.Request, current: SignedIn, action: str) -> web.Response:
    """The 403 page, and its audit entry (who tried which page)."""
    await audit(request, action, user_id=current.user.id, username=current.user.username, outcome=DENIED,
                detail={"page": request.path[:200]})
    return render(request, "message.html", 403, title="无权访问", message=REFUSED, user=current.user,
                  csrf=current.session.csrf)
