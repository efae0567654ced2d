"""A plain HTTP GET for the sidecars' endpoints (probes, /node): status and body, no raising."""

from __future__ import annotations

import urllib.error
import urllib.request


def http_get(url: str, timeout: float = 1.0) -> tuple[int, str]:
    """(status, body); (0, reason) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http only
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)
