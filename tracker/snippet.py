"""The tag a site owner pastes into their pages: one place, so the CLI and the dashboard agree."""

from __future__ import annotations


def snippet_tag(site_id: str, public_url: str) -> str:
    """``<script defer data-site=... src=.../s.js>`` for a site, served by this deployment."""
    return f'<script defer data-site="{site_id}" src="{public_url.rstrip("/")}/s.js"></script>'
