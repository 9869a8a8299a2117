"""The /docs page: a Markdown guide rendered safely, a table of contents, copyable examples."""

from __future__ import annotations

import re

from webapp.views import markdown


def test_markdown_escapes_html_and_numbers_headings():
    doc = markdown.render(
        "## Start <b>here</b>\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1))\n\n## Start here\n"
        "### Then\n\n```sh\ncurl -H 'A: <b>' \"$BASE\"\n```\n",
        id_prefix="g-",
    )
    html = str(doc.html)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>" not in html and 'href="javascript' not in html
    assert [(h.level, h.id) for h in doc.headings] == [
        (2, "g-start-b-here-b"),
        (2, "g-start-here"),
        (3, "g-then"),
    ]
    assert [(h.id, [s.id for s in subs]) for h, subs in doc.contents] == [
        ("g-start-b-here-b", []),
        ("g-start-here", ["g-then"]),
    ]
    assert (
        '<code id="g-code-1" class="language-sh">curl -H &#39;A: &lt;b&gt;&#39; &#34;$BASE&#34;\n</code>'
        in html
    )
    assert '<button type="button" class="secondary outline small copy" data-copy="#g-code-1"' in html
    assert str(markdown.inline("Send `Authorization: Bearer <token>`")) == (
        "Send <code>Authorization: Bearer &lt;token&gt;</code>"
    )


def test_the_docs_page_renders_its_text_with_contents_and_examples(client):
    response = client.get("/docs")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    # No raw Markdown: the description's backticks became code.
    assert "`" not in re.sub(r"<pre>.*?</pre>", "", html, flags=re.S)
    assert "<code>Authorization: Bearer &lt;token&gt;</code>" in html
    # A table of contents whose every link lands on an element of the page.
    toc = re.search(r'<nav class="toc".*?</nav>', html, re.S).group(0)
    targets = re.findall(r'href="#([^"]+)"', toc)
    assert {"guide-getting-started", "endpoints", "schemas", "post--video-transform-generate-video"} <= set(
        targets
    )
    ids = set(re.findall(r'\sid="([^"]+)"', html))
    assert set(targets) <= ids
    # curl examples against this server, each with a Copy button for its own block.
    blocks = re.findall(r'<code id="(guide-code-\d+)" class="language-sh">(.*?)</code>', html, re.S)
    assert len(blocks) >= 5 and any("curl" in text for _, text in blocks)
    assert "export BASE=http://localhost" in html
    for block_id, _ in blocks:
        assert f'data-copy="#{block_id}"' in html
    # The schemas' "*" is said once, and on each field to whoever points at it.
    assert "Fields marked <strong>*</strong> must be sent in a request and are always present" in html
    assert '<abbr title="required">*</abbr>' in html
