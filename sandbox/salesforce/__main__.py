"""``python -m sandbox.salesforce``: run a sandbox org in the foreground."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sandbox.common.signals import stop_on_signals
from sandbox.salesforce.sandbox import SalesforceSandbox


def _size(text: str) -> str | int:
    return int(text) if text.isdigit() else text


def main(argv: list[str] | None = None) -> int:
    """Start the sandbox, print how to reach it, serve until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.salesforce", description="Run the Salesforce sandbox org."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--size", type=_size, default="small", help="small, medium, large or a number of deals"
    )
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    sandbox = SalesforceSandbox(seed=args.seed, size=args.size, data_dir=args.data_dir)
    stop_on_signals()  # before start: a signal during start-up must stop it too
    try:
        sandbox.start(host=args.host, port=args.port)
        creds = sandbox.credentials
        lines = [
            f"Salesforce sandbox (seed {args.seed}, size {args.size}) at {sandbox.url}",
            f"  CA bundle:        {sandbox.ca_bundle}",
            f"  username:         {creds.username}",
            f"  password:         {creds.password}",
            f"  security token:   {creds.security_token}",
            f"  consumer key:     {creds.consumer_key}",
            f"  consumer secret:  {creds.consumer_secret}",
            f"  refresh token:    {creds.refresh_token}",
            f"  JWT private key:  {creds.jwt_private_key_path}",
            f"  organization id:  {creds.organization_id}",
            f"  admin:            {sandbox.url}/__admin/ (calls, faults, mutate, records)",
            "Press Ctrl-C to stop.",
        ]
        print("\n".join(lines), flush=True)
        sandbox.serve_forever()  # stops the sandbox on Ctrl-C or SIGTERM
    except KeyboardInterrupt:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
