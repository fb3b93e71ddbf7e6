"""Running ``icp-worker`` in the test process, the way every CLI test does."""

from __future__ import annotations

from typer.testing import CliRunner, Result

from worker.cli.app import app


def run_cli(*args: str, code: int = 0, traceback: bool = False) -> Result:
    """Invoke the CLI with ``args``; assert its exit code and, unless ``traceback``, that it printed none."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output + repr(result.exception)
    if not traceback:
        assert "Traceback" not in result.output
    return result
