"""The console's static files and templates: htmx is the vendored file we checked, and no template
carries inline script, inline style or event-handler attributes (the CSP would refuse them)."""

from __future__ import annotations

import hashlib
import re

from strongroom.console import STATIC

# htmx 2.0.11 from the npm registry (package htmx.org, file dist/htmx.min.js), licence 0BSD beside it.
HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
TEMPLATES = STATIC.parent / "templates"


def test_htmx_is_the_vendored_release_with_its_licence() -> None:
    data = (STATIC / "htmx.min.js").read_bytes()
    assert hashlib.sha256(data).hexdigest() == HTMX_SHA256
    assert b'version:"2.0.11"' in data
    assert "Zero-Clause BSD" in (STATIC / "htmx.LICENSE").read_text()


def test_templates_hold_no_inline_script_style_or_handlers() -> None:
    for template in sorted(TEMPLATES.rglob("*.html")):
        text = template.read_text()
        for script in re.findall(r"<script\b[^>]*>", text):
            assert re.search(r'\bsrc="/console/static/[\w.]+"', script), (template.name, script)
        assert "<style" not in text and " style=" not in text, template.name
        assert not re.search(r"\son[a-z]+=", text), template.name
        assert "hx-on" not in text and "|safe" not in text, template.name
