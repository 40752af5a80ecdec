"""The child process that runs the xllamacpp server: ``python -m swarmlearn.serving._child SPEC``.

SPEC is a JSON file written by :class:`~swarmlearn.serving.LlamaServer`. The
child loads the model, serves HTTP on the given host and port, and runs until
SIGTERM or SIGINT, or until its parent process is gone. Everything it says
(and everything llama.cpp logs) goes to its stdout/stderr, which the parent
points at the server's log file. Exit codes: 0 stopped, 2 bad spec, 3 the
server failed to start, 4 xllamacpp missing.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

from swarmlearn.serving._spec import ChildSpec

__all__ = ["main"]

logger = logging.getLogger("swarmlearn.serving.child")

EXIT_BAD_SPEC = 2
EXIT_START_FAILED = 3
EXIT_MISSING_EXTRA = 4
READY_MARK = "swarmlearn-child: listening on"


def _serve(spec: ChildSpec) -> int:
    try:
        import xllamacpp
    except ImportError:
        logger.error("xllamacpp is not installed: pip install 'swarmlearn[llm]'")
        return EXIT_MISSING_EXTRA
    # Block the stop signals before llama.cpp starts its threads, so that they
    # inherit the mask and only sigtimedwait below ever receives them.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    try:
        server = xllamacpp.Server(spec.params(xllamacpp))
    except RuntimeError as exc:
        logger.error("failed to start the server: %s", exc)
        return EXIT_START_FAILED
    logger.info("%s %s pid %d", READY_MARK, server.listening_address, os.getpid())
    parent = os.getppid()
    while True:
        info = signal.sigtimedwait({signal.SIGTERM, signal.SIGINT}, 1.0)
        if info is not None:
            logger.info("signal %d: stopping", info.si_signo)
            break
        if os.getppid() != parent:
            logger.warning("parent process %d is gone: stopping", parent)
            break
    del server
    logger.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if len(args) != 1:
        logger.error("usage: python -m swarmlearn.serving._child SPEC.json")
        return EXIT_BAD_SPEC
    try:
        spec = ChildSpec.load(Path(args[0]))
    except (OSError, ValueError, TypeError) as exc:
        logger.error("cannot read spec %s: %s", args[0], exc)
        return EXIT_BAD_SPEC
    return _serve(spec)


if __name__ == "__main__":
    sys.exit(main())
