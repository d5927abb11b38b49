"""Where alerts go besides the signed webhook and email: Apprise URLs (`slack://...`,
`msteams://...`, `pagerduty://...`, `ntfy://...`, `mailto://...` and the rest of Apprise's
list). A rule's URLs are checked when it is saved (Apprise must know the scheme and accept the
URL), sealed at rest like node passwords (they hold tokens), and only ever shown back as
scheme and host, through Apprise's own privacy mask (a Slack token in the host place shows as
`T...2`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import apprise

from . import Invalid, validate

MAX_URLS = 20


def _service(url: str) -> Any:
    """Apprise's plugin object for `url`, or None when it does not take it."""
    found = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    return found or None


def check(value: Any) -> list[str]:
    """The `notify` field: a list of at most MAX_URLS Apprise URLs, each one it accepts."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_URLS:
        raise Invalid(f"notify: a list of at most {MAX_URLS} Apprise URLs", "notify")
    urls = []
    for index, item in enumerate(value):
        # no control or line-separator character: these end up in requests and headers
        url = validate.text(item, f"notify[{index}]", limit=2048, required=True)
        if _service(url) is None:
            scheme = url.split("://", 1)[0][:20] if "://" in url else "(none)"
            raise Invalid(f"notify[{index}]: not a URL Apprise can deliver to (scheme "
                          f"{scheme!r}; see https://github.com/caronc/apprise/wiki)", "notify")
        urls.append(url)
    return urls


def shown(url: str) -> str:
    """Scheme and host only, of Apprise's privacy-masked form: enough to tell channels
    apart, never a token."""
    service = _service(url)
    masked = service.url(privacy=True) if service is not None else url
    parts = urlsplit(masked)
    return f"{parts.scheme}://{parts.hostname or ''}"
