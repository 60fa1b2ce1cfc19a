"""The few pages the front service answers itself (no script, nothing from the app)."""

from __future__ import annotations

from html import escape

SIGNIN_PATH = "/__vibeplane/signin"
STARTING_RELOAD_SECONDS = 2


def _page(title: str, body: str, head: str = "") -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title>{head}</head>"
        f"<body style='font-family:sans-serif;max-width:40em;margin:3em auto'>{body}</body></html>"
    )


def signin_page(next_path: str, message: str = "") -> str:
    note = f"<p><strong>{escape(message)}</strong></p>" if message else ""
    return _page(
        "Sign in",
        f"<h1>Sign in to this preview</h1>{note}"
        "<p>Paste a Kubernetes token of yours (for example <code>kubectl create token</code> "
        "for your ServiceAccount, or your OIDC id-token). It is checked by the cluster and "
        "never stored; a cookie for this app only remembers the answer for a few minutes.</p>"
        f"<form method='post' action='{SIGNIN_PATH}'>"
        f"<input type='hidden' name='next' value='{escape(next_path, quote=True)}'>"
        "<input type='password' name='token' autocomplete='off' size='60' required> "
        "<button type='submit'>Sign in</button></form>",
    )


def forbidden_page(user: str, app: str, namespace: str) -> str:
    return _page(
        "Forbidden",
        f"<h1>Not yours to open</h1><p>{escape(user)} may not get vibeapps/{escape(app)} in "
        f"namespace {escape(namespace)}. Ask the workspace's admin for a role.</p>",
    )


def starting_page(app: str) -> str:
    return _page(
        "Starting",
        f"<h1>Starting {escape(app)}</h1><p>The preview was asleep; it is waking up. "
        "This page reloads by itself.</p>",
        head=f"<meta http-equiv='refresh' content='{STARTING_RELOAD_SECONDS}'>",
    )


def safe_next(path: str | None) -> str:
    """A local path to return to after sign-in (never another site: no open redirect)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    if path.startswith(SIGNIN_PATH):
        return "/"
    return path
