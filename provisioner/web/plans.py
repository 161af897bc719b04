"""Plans as the CLI prints them, in colour, as HTML: the CLI's own text with its rich
markup (``read.plans.plans(..., markup=True)``), turned into HTML by rich itself, so
the page shows exactly what ``provisioner diff`` prints in a terminal."""

from __future__ import annotations

import io

from markupsafe import Markup
from rich.console import Console

from provisioner.planning.plan import Plan
from provisioner.read import plans
from provisioner.read.models import PlansOut

CODE = '<pre class="plan"><code>{code}</code></pre>'


def html(text: str) -> Markup:
    """Rich markup as HTML with inline colours (every character of the text escaped)."""
    console = Console(
        record=True, file=io.StringIO(), width=400, color_system="standard", force_terminal=True
    )
    console.print(text, markup=True, highlight=False, soft_wrap=True)
    return Markup(console.export_html(inline_styles=True, code_format=CODE))


def shown(found: list[Plan]) -> tuple[PlansOut, Markup]:
    """The plans as every face shows them (redacted), and their text as HTML."""
    out = plans.plans(found, markup=True)
    return out, html(out.text)
