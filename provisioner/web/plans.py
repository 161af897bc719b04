"""Plans as the CLI prints them, in colour, as HTML: the CLI's own text with its rich
markup (``read.plans.plans(..., markup=True)``), turned into HTML by rich itself, so
the page shows exactly what ``provisioner diff`` prints in a terminal."""

from __future__ import annotations

import io

from markupsafe import Markup
from rich.console import Console
from rich.terminal_theme import TerminalTheme

from provisioner.planning.plan import Plan
from provisioner.read import plans
from provisioner.read.models import PlansOut

CODE = '<pre class="plan"><code>{code}</code></pre>'
# The terminal's colours, darkened so each line reads at WCAG AA (4.5:1 or more) on the
# page's light code background; rich's default green and yellow do not (3.8:1).
AA_LIGHT = TerminalTheme(
    (255, 255, 255),
    (17, 24, 39),
    [
        (17, 24, 39),  # black
        (164, 14, 38),  # red: removals
        (17, 99, 41),  # green: additions
        (122, 78, 0),  # yellow: changes
        (10, 79, 168),  # blue
        (128, 34, 128),  # magenta
        (11, 96, 112),  # cyan
        (75, 85, 99),  # white (shown as grey on a light page)
    ],
    [
        (55, 65, 81),
        (164, 14, 38),
        (17, 99, 41),
        (122, 78, 0),
        (10, 79, 168),
        (128, 34, 128),
        (11, 96, 112),
        (55, 65, 81),
    ],
)


def html(text: str) -> Markup:
    """Rich markup as HTML with inline colours (every character of the text escaped)."""
    console = Console(
        record=True, file=io.StringIO(), width=400, color_system="standard", force_terminal=True
    )
    console.print(text, markup=True, highlight=False, soft_wrap=True)
    return Markup(console.export_html(inline_styles=True, code_format=CODE, theme=AA_LIGHT))


def shown(found: list[Plan]) -> tuple[PlansOut, Markup]:
    """The plans as every face shows them (redacted), and their text as HTML."""
    out = plans.plans(found, markup=True)
    return out, html(out.text)
