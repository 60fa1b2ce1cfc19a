"""`vibeplane-frontdoor`: run the front service."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
from pathlib import Path

import aiohttp
from aiohttp import web

from vibeplane_frontdoor.kube import Connection, Kube
from vibeplane_frontdoor.server import FrontDoor, Settings, make_app

KEY_ENV = "VIBEPLANE_FRONTDOOR_KEY_FILE"


def _key(path: str | None) -> bytes:
    if path:
        return Path(path).read_bytes().strip()
    # One replica without a key Secret: a fresh key per start (people sign in again after a
    # restart). Several replicas must share a Secret.
    logging.getLogger(__name__).warning(
        "no %s: signing cookies with a key of this process", KEY_ENV
    )
    return secrets.token_bytes(32)


async def _run(args: argparse.Namespace) -> None:
    connection = (
        Connection.from_kubeconfig(Path(args.kubeconfig))
        if args.kubeconfig
        else Connection.in_cluster()
    )
    settings = Settings(
        key=_key(args.key_file),
        domain=args.domain or None,
        cookie_ttl=args.cookie_ttl,
        upstream=args.upstream,
    )
    async with (
        aiohttp.ClientSession() as api_session,
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as upstream,
    ):
        front = FrontDoor(settings, Kube(connection, api_session), upstream)
        runner = web.AppRunner(make_app(front), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, args.host, args.port).start()
        logging.getLogger(__name__).info("front service on %s:%s", args.host, args.port)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vibeplane-frontdoor", description=__doc__)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    parser.add_argument("--key-file", default=os.environ.get(KEY_ENV))
    parser.add_argument("--domain", default=os.environ.get("VIBEPLANE_DOMAIN", ""))
    parser.add_argument("--cookie-ttl", type=int, default=600)
    parser.add_argument(
        "--upstream",
        default="service",
        help="service (in the cluster) or nodeport:<node address> (outside it)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(_run(args))
