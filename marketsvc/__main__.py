"""``python -m marketsvc migrate | seed | serve | token | openapi``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import orjson
from sqlalchemy import text

from marketsvc.settings import Settings, SettingsError
from marketsvc.store.engine import create_engine
from marketsvc.store.migrate import upgrade
from marketsvc.store.seed import SeedPlan, seed
from marketsvc.web.auth import TokenCodec


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m marketsvc", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="bring the database to the newest migration")
    s = sub.add_parser("seed", help="insert deterministic demo data in bulk")
    d = SeedPlan()
    for name in ("sellers", "customers", "items", "orders", "users"):
        s.add_argument(f"--{name}", type=int, default=getattr(d, name), metavar="N")
    s.add_argument("--pets-per-user", type=int, default=d.pets_per_user, metavar="N")
    s.add_argument("--lines-per-order", type=int, default=d.lines_per_order, metavar="N")
    s.add_argument("--random-seed", type=int, default=d.random_seed, metavar="S")
    s.add_argument("--if-empty", action="store_true", help="only when there are no customers")
    v = sub.add_parser("serve", help="run gunicorn with aiohttp's worker")
    v.add_argument("--workers", type=int, metavar="N")
    t = sub.add_parser("token", help="print a signed bearer token")
    who = t.add_mutually_exclusive_group(required=True)
    who.add_argument("--admin", action="store_true")
    who.add_argument("--customer", type=int, metavar="ID")
    who.add_argument("--seller", type=int, metavar="ID")
    t.add_argument("--ttl", type=int, default=3600, metavar="SECONDS")
    sub.add_parser(
        "openapi", help="print the OpenAPI document (the one /api/v1/openapi.json serves)"
    )
    return p


async def _is_empty(settings: Settings) -> bool:
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            return not await conn.scalar(text("SELECT EXISTS (SELECT 1 FROM customers)"))
    finally:
        await engine.dispose()


def run_seed(settings: Settings, args: argparse.Namespace) -> None:
    if args.if_empty and not asyncio.run(_is_empty(settings)):
        print("seed: the database already has customers; nothing to do", file=sys.stderr)
        return
    plan = SeedPlan(
        sellers=args.sellers,
        customers=args.customers,
        items=args.items,
        orders=args.orders,
        users=args.users,
        pets_per_user=args.pets_per_user,
        lines_per_order=args.lines_per_order,
        random_seed=args.random_seed,
    )
    counts = asyncio.run(seed(settings, plan))
    print("seed: " + ", ".join(f"{n} {table}" for table, n in counts.items()), file=sys.stderr)


def serve(args: argparse.Namespace) -> None:
    if args.workers:
        os.environ["MARKETSVC_WORKERS"] = str(args.workers)
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:marketsvc.ops.gunicorn_conf",
        "marketsvc.app:gunicorn_app",
    ]
    os.execv(sys.executable, argv)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"marketsvc: {exc}", file=sys.stderr)
        return 2
    if args.command == "migrate":
        upgrade(settings.database_url)
    elif args.command == "seed":
        run_seed(settings, args)
    elif args.command == "serve":
        serve(args)
    elif args.command == "token":
        codec = TokenCodec(settings)
        if args.admin:
            subject, role = "admin", "admin"
        elif args.seller is not None:
            subject, role = str(args.seller), "seller"
        else:
            subject, role = str(args.customer), "customer"
        print(codec.issue(subject, role, ttl=args.ttl))
    elif args.command == "openapi":
        print_document(settings)
    return 0


def print_document(settings: Settings) -> None:
    from marketsvc.app import create_app  # the whole app, only for this command
    from marketsvc.web.openapi import build_document

    document = build_document(create_app(settings))
    sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")


if __name__ == "__main__":
    sys.exit(main())
