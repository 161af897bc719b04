"""The CLI as an admin meets it: help texts, tables that keep whole values, listings.

Commands run in-process through typer's ``CliRunner`` on a fresh SQLite registry; the
runner's output is not a terminal, exactly like ``provisioner … | grep``.
"""

from __future__ import annotations

from typer.testing import CliRunner

from provisioner.cli.app import app


def test_top_level_help_describes_the_product() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "Run an ISP's packages on MikroTik routers and FreeRADIUS" in text
    assert "helpers every command uses" not in text
