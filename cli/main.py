"""The `scenegrep` command."""

from __future__ import annotations

import click

from .common import Group, quiet_libraries
from .doctor_cmd import doctor
from .eval_cmd import eval_group
from .index_cmd import index
from .info_cmd import info
from .open_cmd import open_result
from .prune_cmd import prune
from .search_cmd import search
from .serve_cmd import serve


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="scenegrep")
def cli():
    """Search a video archive by meaning and get back clips with timecodes.

    \b
    Examples (index once, then search by text or by picture):
      scenegrep index ~/archive --every 2
      scenegrep search "tom chases jerry through the kitchen"
      scenegrep search --image still.jpg -k 5 --json
      scenegrep search "chase" --export chases.edl
      scenegrep open 1
      scenegrep serve --open
      scenegrep doctor

    Exit codes: 0 ok, 1 failed, 2 bad usage, 3 indexed but some inputs failed,
    130 interrupted.
    """


cli.add_command(index)
cli.add_command(search)
cli.add_command(info)
cli.add_command(open_result)
cli.add_command(prune)
cli.add_command(doctor)
cli.add_command(eval_group)
cli.add_command(serve)


def main() -> None:
    quiet_libraries()
    cli(prog_name="scenegrep")


if __name__ == "__main__":
    main()
