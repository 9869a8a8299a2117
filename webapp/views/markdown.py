"""Markdown for our own pages (the /docs guide and the API's descriptions), rendered safely.

Only CommonMark and tables: raw HTML in the text is escaped, never passed through, and
links keep markdown-it's own check of their scheme (no `javascript:`). Headings get ids, so
a page can link to them and list them as its contents; code blocks get a *Copy* button
(static/app.js).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markupsafe import Markup, escape


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    id: str


@dataclass(frozen=True)
class Document:
    html: Markup
    headings: list[Heading]

    @property
    def contents(self) -> list[tuple[Heading, list[Heading]]]:
        """The table of contents: each second-level heading with the third-level ones under it."""
        tree: list[tuple[Heading, list[Heading]]] = []
        for heading in self.headings:
            if heading.level == 2:
                tree.append((heading, []))
            elif heading.level == 3 and tree:
                tree[-1][1].append(heading)
        return tree


def slug(text: str, prefix: str = "") -> str:
    """A fragment id from a heading's text: "Create a job" -> "create-a-job"."""
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return prefix + (words or "section")


def _heading_ids(state: StateCore) -> None:
    """Give every heading a unique id and note it (level, text, id) for a table of contents."""
    taken: set[str] = set()
    headings = state.env.setdefault("headings", [])
    prefix = state.env.get("id_prefix", "")
    tokens = state.tokens
    for index, token in enumerate(tokens):
        if token.type != "heading_open":
            continue
        inline = tokens[index + 1]
        text = "".join(
            child.content for child in inline.children or [] if child.type in ("text", "code_inline")
        )
        base = candidate = slug(text, prefix)
        number = 2
        while candidate in taken:
            candidate, number = f"{base}-{number}", number + 1
        taken.add(candidate)
        token.attrSet("id", candidate)
        headings.append(Heading(int(token.tag[1]), text, candidate))


def _fence(self, tokens, idx, options, env) -> str:
    """A code block with a Copy button that copies exactly its text. The block scrolls sideways
    on narrow screens, so it takes keyboard focus (arrow keys scroll it)."""
    token = tokens[idx]
    number = env["code_blocks"] = env.get("code_blocks", 0) + 1
    code_id = f"{env.get('id_prefix', '')}code-{number}"
    language = token.info.split()[0] if token.info.strip() else ""
    css = f' class="language-{escape(language)}"' if language else ""
    code = f'<code id="{code_id}"{css}>{escape(token.content)}</code>'
    return (
        f'<div class="code-block"><pre tabindex="0">{code}</pre>'
        f'<button type="button" class="secondary outline small copy" data-copy="#{code_id}" '
        f'aria-live="polite">Copy</button></div>\n'
    )


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    md.core.ruler.push("heading_ids", _heading_ids)
    md.add_render_rule("fence", _fence)
    return md


_MD = _parser()


def render(text: str, id_prefix: str = "") -> Document:
    """A Markdown text as HTML, with its headings (ids start with `id_prefix`)."""
    env: dict = {"id_prefix": id_prefix}
    html = _MD.render(text, env)
    return Document(Markup(html), list(env.get("headings", [])))


def inline(text: str | None) -> Markup:
    """One paragraph's worth of Markdown (`code`, *emphasis*, links), without the paragraph."""
    return Markup(_MD.renderInline(text or ""))
