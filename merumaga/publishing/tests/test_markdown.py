from html.parser import HTMLParser

import pytest

from merumaga.publishing.markdown import render

# Known payloads (OWASP XSS filter evasion cheat sheet and friends), in Markdown and raw HTML.
HOSTILE = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    '<iframe src="https://evil.example"></iframe>',
    "<style>body{display:none}</style>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    '<a href="javascript:alert(1)">x</a>',
    "<svg onload=alert(1)>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "[x](vbscript:msgbox(1))",
    "<object data=x></object><embed src=x>",
    '<form action="https://evil.example"><input name=x></form>',
]


class Elements(HTMLParser):
    """The tags and attributes a browser would build from the HTML: text does not count."""

    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


@pytest.mark.parametrize("payload", HOSTILE)
def test_hostile_markdown_leaves_nothing_executable(payload):
    parser = Elements()
    parser.feed(render(payload))
    for tag, attributes in parser.found:
        assert tag not in {"script", "iframe", "style", "svg", "object", "embed", "form", "input"}
        for name, value in attributes.items():
            assert not name.startswith("on") and name != "style", (tag, name)
            if name in ("href", "src"):
                scheme = (value or "").strip().lower().split(":", 1)[0]
                assert scheme in {"http", "https", "mailto", "x"} or ":" not in (value or ""), value


def test_ordinary_markdown_survives():
    html = render(
        "## 見出し\n\n**太字**と[リンク](https://example.jp/)\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    )
    assert "<h2>見出し</h2>" in html
    assert "<strong>太字</strong>" in html
    assert 'href="https://example.jp/"' in html and 'rel="noopener noreferrer nofollow"' in html
    assert "<table>" in html


def test_raw_html_is_shown_as_text_not_run():
    assert "&lt;b&gt;" in render("<b>bold?</b>")
