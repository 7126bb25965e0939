"""`python -m web.cli`: the `journey` command."""

from web.cli import main

main()
