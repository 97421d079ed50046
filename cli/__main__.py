"""`python -m cli` runs the `trustmh` command."""

from cli.main import main

main()
