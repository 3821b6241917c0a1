"""`python -m edge_agent`: the agent daemon without the full `testbed` CLI.

On JetPack (Python 3.8) the `testbed` command cannot load (its other commands need 3.11), so the
edge_agent role starts the agent this way. Options mirror `testbed agent run`; anything not
given comes from TESTBED_AGENT_* variables or `.env`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any, Dict, List, Optional

from pydantic import ValidationError

from edge_agent.settings import DVFS_KINDS, ENERGY_METERS


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="testbed-agent", description=__doc__)
    parser.add_argument("--controller", dest="controller_url", help="Controller URL.")
    parser.add_argument(
        "--profile", help="Device profile: rpi4, jetson-nano, custom, or sim [default: sim]."
    )
    parser.add_argument(
        "--dvfs",
        choices=DVFS_KINDS,
        help="DVFS backend [default: auto]; simulated plays the profile's levels on any host.",
    )
    parser.add_argument(
        "--energy-meter",
        dest="energy_meter",
        choices=ENERGY_METERS,
        help="auto: measure with the INA3221 where present; none: never [default: auto].",
    )
    parser.add_argument("--id", dest="agent_id", help="Agent id [default: hostname].")
    parser.add_argument("--state-dir", help="Where the identity key is kept.")
    parser.add_argument("--data-dir", help="Dataset folder.")
    parser.add_argument("--log-level", default="info")
    args = vars(parser.parse_args(argv))
    log_level = args.pop("log_level")
    overrides = {k: v for k, v in args.items() if v is not None}

    return serve(overrides, log_level)


def serve(overrides: Dict[str, Any], log_level: str = "info") -> int:
    """Build the settings (``overrides`` over the environment) and run the agent until stopped.

    Returns the exit code: 0, or 2 for bad settings (an unknown profile, DVFS backend or
    meter included) or a DVFS backend this host cannot provide.
    """
    from edge_agent.agent import Agent
    from edge_agent.dvfs import DVFSError
    from edge_agent.settings import AgentSettings

    try:
        settings = AgentSettings(**overrides)
    except ValidationError as err:
        # The messages only: pydantic's own text would quote the input (the enrolment token).
        reasons = "; ".join(
            "{}: {}".format(".".join(str(p) for p in e["loc"]), e["msg"])
            for e in err.errors(include_input=False, include_url=False)
        )
        print(f"agent: bad settings: {reasons}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s agent[" + settings.agent_id + "] %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        agent = Agent(settings)
    except DVFSError as err:
        print(f"agent: --dvfs {settings.dvfs}: {err}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _abandon)
    signal.signal(signal.SIGHUP, _abandon)
    try:
        agent.run()
    except KeyboardInterrupt:  # SIGINT, SIGTERM or SIGHUP: run() has restored DVFS
        agent.stop()
    return 0


def _abandon(signum: int, frame: Any) -> None:
    """Stop now: the stage in progress (a training step included) is abandoned, not finished.

    Raised in the main thread at its next bytecode, so the agent exits within a mini-batch;
    :meth:`Agent.run` still restores the DVFS settings on the way out.
    """
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    sys.exit(main())
