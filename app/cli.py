"""The ``switchboard`` command line: serve, profiles build|bootstrap, predict, eval, calibrate."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from app.embedding.encoder import Encoder
from app.errors import ConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchboard", description="multi-LLM query router")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=int,
        help="worker processes (default: one per core with SWITCHBOARD_REDIS_URL, else one)",
    )

    profiles = commands.add_parser("profiles", help="capability profiles")
    actions = profiles.add_subparsers(dest="action", required=True)
    build = actions.add_parser("build", help="build learned profiles from labelled JSONL")
    build.add_argument("--data", type=Path, action="append", required=True)
    build.add_argument("--out", type=Path, required=True)
    _bootstrap_arguments(
        actions.add_parser("bootstrap", help="profile catalog models on a graded suite")
    )

    predict = commands.add_parser("predict", help="route a JSONL file of prompts offline")
    predict.add_argument("--profiles", type=Path, required=True)
    predict.add_argument("--input", type=Path, required=True)
    predict.add_argument("--output", type=Path, required=True)

    evaluate = commands.add_parser("eval", help="evaluate routing on labelled data")
    evaluate.add_argument("--profiles", type=Path, required=True)
    evaluate.add_argument("--data", type=Path, required=True)
    evaluate.add_argument("--out", type=Path, required=True)

    cal = commands.add_parser("calibrate", help="find the cost weight for a budget")
    cal.add_argument("--data", type=Path, required=True)
    target = cal.add_mutually_exclusive_group(required=True)
    target.add_argument("--target-cost-usd", type=float)
    target.add_argument("--strong-share", type=float)
    cal.add_argument("--profiles", type=Path)
    return parser


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
        return value

    return parse


def _bootstrap_arguments(boot: argparse.ArgumentParser) -> None:
    boot.add_argument("--out", type=Path, required=True, help="answers, labelled data, profiles")
    boot.add_argument("--catalog", type=Path, help="catalog YAML (default: the service's)")
    boot.add_argument("--models", type=lambda s: [m for m in s.split(",") if m],
                      help="comma-separated catalog ids (default: every callable one)")  # fmt: skip
    boot.add_argument("--suite", default="default", help="'default' or a JSON Lines file")
    boot.add_argument("--limit", type=_positive(int), help="a stratified sample of N prompts")
    boot.add_argument("--budget-usd", type=_positive(float), default=5.0,
                      help="most this run spends on paid models (default 5)")  # fmt: skip
    boot.add_argument("--concurrency", type=_positive(int), default=8)
    boot.add_argument("--judge", metavar="MODEL_ID", help="grade open-ended prompts with it")
    boot.add_argument("--yes", action="store_true", help="do not ask before paid calls")


def _bootstrap(args: argparse.Namespace) -> None:
    import asyncio
    import signal

    from app.profiling.bootstrap import Options, bootstrap
    from app.settings import get_settings

    options = Options(out=args.out, catalog=args.catalog, models=args.models, suite=args.suite,
                      limit=args.limit, budget_usd=args.budget_usd, concurrency=args.concurrency,
                      judge=args.judge, yes=args.yes)  # fmt: skip

    async def run() -> None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        await bootstrap(options, get_settings())

    try:
        asyncio.run(run())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(f"\ninterrupted: every answer received is kept in {args.out}/answers.jsonl; "
              "run the same command again to continue", file=sys.stderr)  # fmt: skip
        raise SystemExit(130) from None


def _encoder(like: str | None = None) -> Encoder:
    """The configured encoder; given profiles' embedding id, the one they were built with."""
    from app.embedding.encoder import DEFAULT_MAX_TOKENS, load_encoder
    from app.settings import get_settings

    settings = get_settings()
    return load_encoder(
        settings.embedding_model,
        settings.embedding_backend,
        settings.cache_dir,
        settings.embedding_threads,
        like=like,
        max_tokens=settings.embedding_max_tokens or DEFAULT_MAX_TOKENS,
    )


def _build(args: argparse.Namespace) -> None:
    from app.offline.crossval import embed_cached, profiles_from
    from app.selection.labelled import read_labelled
    from app.selection.profiles import save_profiles

    data = read_labelled(args.data)
    encoder = _encoder()
    profiles = profiles_from(data, embed_cached(encoder, data.prompts), encoder.model_id)
    save_profiles(profiles, args.out)
    print(f"built profiles: {len(data.models)} models, {len(data.prompts)} prompts, in {args.out}")


def _predict(args: argparse.Namespace) -> None:
    from app.offline.predict import predict_file
    from app.selection.profiles import load_profiles

    profiles = load_profiles(args.profiles)
    count = predict_file(profiles, _encoder(profiles.embedding_model), args.input, args.output)
    print(f"wrote {count} predictions to {args.output}")


def _eval(args: argparse.Namespace) -> None:
    from app.offline.scoring import evaluate
    from app.selection.profiles import load_profiles

    profiles = load_profiles(args.profiles)
    report = evaluate(profiles, args.data, _encoder(profiles.embedding_model))
    written = report.write(args.out)
    print(report.markdown())
    print(f"\nreport written to {args.out}: {', '.join(written)}")
    if "cost_quality.png" not in written:
        print("no plot: matplotlib is missing (the offline extra: pip install -e '.[offline]')")


def _calibrate(args: argparse.Namespace) -> None:
    from app.offline.calibration import calibrate
    from app.offline.scoring import sample_predictions
    from app.selection.profiles import load_profiles

    profiles = load_profiles(args.profiles) if args.profiles else None
    encoder = _encoder(profiles.embedding_model if profiles else None)
    data, quality, cost = sample_predictions(args.data, profiles, encoder)
    result = calibrate(data, quality, cost, target_cost_usd=args.target_cost_usd,
                       strong_share=args.strong_share)  # fmt: skip
    if not data.has_costs:
        print("note: the data has no costs; costs are estimated from catalog prices x tokens "
              "(0 for models not in the catalog)", file=sys.stderr)  # fmt: skip
    print(json.dumps(result.__dict__, indent=2))
    if not result.met:
        print("the target cannot be met even at the cheapest setting", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        if args.command == "serve":
            from app.server import serve

            serve(args.host, args.port, args.workers)
        elif args.command == "profiles" and args.action == "bootstrap":
            _bootstrap(args)
        elif args.command == "profiles":
            _build(args)
        elif args.command == "predict":
            _predict(args)
        elif args.command == "eval":
            _eval(args)
        else:
            _calibrate(args)
    except ConfigError as exc:
        raise SystemExit(f"switchboard: {exc.message}") from None


if __name__ == "__main__":
    main()
