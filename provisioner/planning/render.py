"""Plans as an admin reads them: grouped by target then menu, like ``terraform plan``."""

from __future__ import annotations

import re
from collections.abc import Iterable

from provisioner.planning.plan import SYMBOL, Action, Plan

_STYLE = {
    Action.add: "green",
    Action.set: "yellow",
    Action.remove: "red",
    Action.conflict: "magenta",
    Action.move: "cyan",
}


# What rich would read as a tag: "[" then a letter, "#", "/" or "@" ... "]" (rich.markup).
_TAG = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")


def _escape(text: str) -> str:
    """Text shown literally inside rich markup (as ``rich.markup.escape``): a value such
    as '[b]' must print as itself, not turn the rest of the line bold."""
    text = _TAG.sub(lambda m: f"{m.group(1)}{m.group(1)}\\{m.group(2)}", text)
    return text + "\\" if text.endswith("\\") and not text.endswith("\\\\") else text


def summary(plans: Iterable[Plan]) -> dict[str, int]:
    total = {"add": 0, "set": 0, "remove": 0, "conflict": 0, "move": 0, "unreachable": 0}
    for p in plans:
        for k, v in p.counts().items():
            total[k] += v
        total["unreachable"] += 1 if p.error else 0
    return total


def summary_line(plans: Iterable[Plan]) -> str:
    return counts_line(summary(plans))


def counts_line(t: dict[str, int]) -> str:
    """``summary_line`` of counts by action (``summary``, or ``Plan.counts`` added up)."""
    line = (
        f"{t['add']} to add, {t['set']} to change, {t['remove']} to remove, "
        f"{t['conflict']} conflicts"
    )
    if t.get("move"):
        line += f", {t['move']} to move"
    if t.get("unreachable"):
        line += f", {t['unreachable']} unreachable"
    return line


def render(plans: Iterable[Plan], *, markup: bool = False) -> str:
    """Text (or rich markup) for a set of plans; the same text the API returns."""
    plans = list(plans)
    out: list[str] = []

    def style(action: Action, text: str) -> str:
        return f"[{_STYLE[action]}]{_escape(text)}[/]" if markup else text

    for plan in plans:
        label = "RADIUS tables" if plan.kind == "radius" else f"router {plan.target}"
        if plan.error:
            out.append(f"{label}: UNREACHABLE: {plan.error}")
            continue
        if not plan.changes:
            out.append(f"{label}: no changes")
            continue
        out.append(f"{label}:")
        menu = None
        for c in plan.changes:
            if c.menu != menu:
                menu = c.menu
                out.append(f"  {menu}")
            sym = SYMBOL[c.action]
            ident = f" ({c.ros_id})" if c.ros_id and c.action is not Action.add else ""
            head = f"    {sym} {c.key or menu}{ident}"
            if c.adopt:
                head += "  (adopt)"
            out.append(style(c.action, head))
            if c.action is Action.conflict:
                out.append(style(c.action, f"        ! {c.reason}"))
            elif c.reason:
                out.append(style(c.action, f"        # {c.reason}"))
            for p in c.props:
                if c.action is Action.add or p.old is None:
                    out.append(style(c.action, f"        {p.name} = {p.new!r}"))
                else:
                    out.append(style(c.action, f"        {p.name}: {p.old!r} -> {p.new!r}"))
    out.append("")
    out.append(f"Plan: {summary_line(plans)}.")
    return "\n".join(out)
