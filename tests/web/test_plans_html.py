"""Plans as HTML, as the CLI prints them: rich's own rendering of the CLI's markup, every
value escaped (a value that looks like markup or HTML is shown as itself)."""

from __future__ import annotations

from provisioner.planning.plan import Action, Change, Plan, PropChange
from provisioner.planning.render import render
from provisioner.web.plans import html


def test_plan_html_is_the_cli_text_in_colour_with_values_escaped() -> None:
    plan = Plan(
        "r1",
        changes=(
            Change(
                "/ppp/profile", "home", Action.set, ros_id="*1",
                props=(PropChange("comment", "[b]old</code>", "<script>x</script>"),),
            ),
        ),
    )  # fmt: skip
    text = render([plan], markup=True)
    out = html(text)
    assert '<pre class="plan"><code>' in out
    assert "[b]old&lt;/code&gt;" in out and "&lt;script&gt;x&lt;/script&gt;" in out
    assert "<script>" not in out and "font-weight: bold" not in out
    # Yellow, as "~" changes are in a terminal, dark enough for WCAG AA on a light page.
    assert "color: #7a4e00" in out
    plain = render([plan])
    assert "comment: '[b]old</code>' -> '<script>x</script>'" in plain
