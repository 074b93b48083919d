"""`cairn ui`: the chat page, served by Streamlit."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

PAGE = Path(__file__).resolve().parents[2] / "app" / "streamlit_app.py"  # the page stays in app/


def streamlit_command(host: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(PAGE),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        # Watching every imported module (torch included) for edits costs CPU and can crash.
        "--server.fileWatcherType", "none",
        # The page reports errors in plain words; an unexpected one shows no traceback either.
        "--client.showErrorDetails", "type",
        "--client.toolbarMode", "viewer",  # no "Deploy" button: this page is served, not developed
    ]  # fmt: skip


def ui_command(
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on"),
    port: int = typer.Option(8501, "--port", min=1, max=65535, help="port to listen on"),
) -> None:
    """Start the chat page: cited answers with their sources and the scores of every stage."""
    command = streamlit_command(host, port)
    typer.echo(f"Cairn: http://{host}:{port} (Ctrl-C stops it)", err=True)
    sys.stdout.flush()
    # Streamlit takes this process's place, so Ctrl-C and a service manager's stop reach it.
    os.execv(sys.executable, command)


def register(app: typer.Typer) -> None:
    """Add this part's commands to the `cairn` app."""
    app.command("ui")(ui_command)
