"""``provisioner``: every operation from the shell. Read commands take ``--json``.

Errors print as one line on stderr with exit code 1; ``diff`` exits 0 (no changes),
2 (changes pending) or 1 (error), like ``terraform plan -detailed-exitcode``.

One module per entity, named as the API's routes are (``api/routes``); this module
composes them, as ``api/routes/__init__.py`` composes the routers.
"""

from __future__ import annotations

import typer

from provisioner.cli import (
    activations,
    customers,
    invoices,
    masters,
    ops,
    packages,
    plans,
    resellers,
    routers,
    sessions,
    users,
    webhooks,
)

# Typer keeps line breaks inside a paragraph, so each paragraph is one line here.
HELP = (
    "Run an ISP's packages on MikroTik routers and FreeRADIUS: registry, dry-run diffs, "
    "syncs, activations.\n\n"
    "Read commands take --json. An error prints one line on stderr and exits 1; "
    "`diff` exits 0 (no changes), 2 (changes pending) or 1 (error)."
)

app = typer.Typer(no_args_is_help=True, add_completion=False, help=HELP)
app.add_typer(masters.app, name="master-package")
app.add_typer(packages.app, name="package")
app.add_typer(resellers.app, name="reseller")
app.add_typer(routers.app, name="router")
app.add_typer(customers.app, name="customer")
app.add_typer(users.app, name="user")
app.add_typer(invoices.app, name="invoice")
app.add_typer(sessions.app, name="sessions")
app.add_typer(webhooks.app, name="webhook")
app.add_typer(webhooks.events_app, name="events")
app.add_typer(webhooks.reminders_app, name="reminder")
for module in (plans, activations, ops):
    app.add_typer(module.app)


def main() -> None:
    app()


__all__ = ["app", "main"]
