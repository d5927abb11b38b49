"""Pages that refresh themselves: the browser re-fetches a page's live part with an
`X-Fragment` header (console.js), and the answer is that fragment alone, with an ETag, so an
unchanged table costs a 304 and no markup."""

from __future__ import annotations

import hashlib
from typing import Any

from flask import make_response, render_template, request
from werkzeug.wrappers import Response


def live_page(template: str, fragment: str, **context: Any) -> Response:
    """The whole page, or for a live refresh only its fragment, as a conditional response."""
    if request.headers.get("X-Fragment"):
        html = render_template(fragment, **context)
        response = make_response(html)
        response.set_etag(hashlib.sha256(html.encode()).hexdigest()[:32])
        response.headers["Cache-Control"] = "no-cache"
        return response.make_conditional(request)
    return make_response(render_template(template, fragment=fragment, **context))
