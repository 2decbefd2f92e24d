"""``python -m sandbox.hubspot --port P --seed N --size S``: run the emulator in the foreground."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sandbox.common.signals import stop_on_signals
from sandbox.hubspot.sandbox import HubSpotSandbox


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, seed (or reuse the cached seed), serve until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.hubspot", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--size", default="small", help="small | medium | large | a number of deals"
    )
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    size: str | int = int(args.size) if args.size.isdigit() else args.size
    sandbox = HubSpotSandbox(seed=args.seed, size=size, data_dir=args.data_dir)
    stop_on_signals()  # before start: a signal during start-up must stop it too
    try:
        sandbox.start(host=args.host, port=args.port)
        creds = sandbox.credentials
        lines = [
            f"HubSpot sandbox listening on {sandbox.url}",
            f"  seed={args.seed} size={sandbox.plan.label}",
            f"  deals={sandbox.plan.deals} companies={sandbox.plan.companies} "
            f"owners={sandbox.plan.owners}",
            f"  private_app_token  {creds.private_app_token}",
            f"  client_id          {creds.client_id}",
            f"  client_secret      {creds.client_secret}",
            f"  refresh_token      {creds.refresh_token}",
            f"  app_id             {creds.app_id}",
            f"  developer_api_key  {creds.developer_api_key}",
            f"  portal_id          {creds.portal_id}",
            "Press Ctrl-C to stop.",
        ]
        print("\n".join(lines), flush=True)
        sandbox.serve_forever()  # stops the sandbox on Ctrl-C or SIGTERM
    except KeyboardInterrupt:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
