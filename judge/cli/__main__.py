"""`python -m judge.cli` runs the `trustmh` command; so does the `trustmh` script, through `run`."""

import logging
import os
import sys

from judge.calls.long_lived import long_lived

with long_lived():  # the command line's modules live as long as the process
    from judge.cli.main import main


def run() -> None:
    """`main`, then a prompt exit: every output is written and closed by then, and tearing down the
    thousands of classes the SDKs define would add a fifth of a second to every command."""
    try:
        main()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    if isinstance(code, str):
        print(code, file=sys.stderr)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else (0 if code is None else 1))


if __name__ == "__main__":
    run()
