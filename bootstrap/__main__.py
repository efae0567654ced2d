"""`python -m bootstrap`: form the Redis Cluster, then exit (exit codes: docs/operations.md)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

import structlog

from bootstrap.errors import BootstrapError, ExitCode
from bootstrap.run import run
from bootstrap.settings import parse_job_settings
from clusterkit.io.logs import configure


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    configure()  # INFO until LOG_LEVEL is known to be valid: a bad one is a settings error
    log = structlog.get_logger()
    try:
        settings = parse_job_settings(sys.argv[1:] if argv is None else argv, environ)
        configure(settings.cluster.log_level)
        run(settings)
    except BootstrapError as exc:
        log.error(exc.event, error=str(exc), exit_code=int(exc.exit_code))
        return exc.exit_code
    except KeyboardInterrupt:
        log.error("interrupted")
        return ExitCode.UNEXPECTED
    return ExitCode.OK


if __name__ == "__main__":
    code = main()
    # The work is done and every event is written: end now. A normal interpreter exit would
    # first wake and join each idle scatter thread (up to 256) and walk every parsed node view,
    # 0.2-0.5 s on a loaded node at 200 pods, which `kubectl wait` on the Job would wait out.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
