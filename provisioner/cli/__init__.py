"""``provisioner``: every operation from the shell. Read commands take ``--json``.

Errors print as one line on stderr with exit code 1; ``diff`` exits 0 (no changes),
2 (changes pending) or 1 (error), like ``terraform plan -detailed-exitcode``.
"""

from __future__ import annotations

from provisioner.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
