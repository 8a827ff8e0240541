"""The ``alignkit`` command: parses, dispatches, and turns errors into exit codes.

Exit codes: 0 success; 2 a user error (bad option, missing file, bad data or
config), printed as one message without a traceback; 1 an internal error (a
bug), printed with its traceback so it can be reported.
"""

from __future__ import annotations

import sys
import traceback

import click

from alignkit import __version__
from alignkit.errors import AlignkitError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", "-V", prog_name="alignkit")
def app() -> None:
    """Align language models with human preferences, offline, on your own hardware.

    Every command reads local files and writes plain files or run directories;
    nothing is downloaded. Run `alignkit COMMAND --help` for a command's options.
    """


def _register() -> None:
    from alignkit.commands import register

    register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script; never returns."""
    _register()
    try:
        code = app.main(args=argv, prog_name="alignkit", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        # Usage errors (unknown option, missing argument, a path that does not
        # exist) are user errors: one message, exit 2.
        exc.show()
        sys.exit(2)
    except AlignkitError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception:
        click.echo(traceback.format_exc(), err=True)
        click.echo("internal error: this is a bug in alignkit; please report it with the "
                   "traceback above", err=True)
        sys.exit(1)
    from alignkit.train.processes import end_process_group

    end_process_group()
    sys.exit(code if isinstance(code, int) else 0)
