"""`vibeplane-modelserver` / `python -m vibeplane_modelserver`: serve one model.

    vibeplane-modelserver --backend builtin --model-name builtin --http-port 8080
    vibeplane-modelserver --backend huggingface --model-name coder \\
        --model-path s3://models/coder/v1 --host 0.0.0.0 --http-port 8080

Binds 127.0.0.1 unless `--host` says otherwise: in a pod, pass `--host 0.0.0.0`.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from .model import BuiltinChatModel, ChatModel


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="vibeplane-modelserver",
        description="Serve a chat model over the OpenAI chat-completions API with KServe.",
    )
    parser.add_argument("--backend", choices=["builtin", "huggingface"], default="builtin")
    parser.add_argument("--model-name", required=True, help="the name clients send as `model`")
    parser.add_argument(
        "--model-path", help="huggingface: a save_pretrained folder, or s3://bucket/prefix"
    )
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default loopback)")
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=1024,
        help="huggingface: the completion limit when a request sets none",
    )
    parser.add_argument(
        "--download-dir", type=Path, help="huggingface: where s3:// weights are downloaded"
    )
    parser.add_argument("--device", help="huggingface: torch device (default cuda if available)")
    parser.add_argument(
        "--threads", type=int, default=8, help="worker threads that generations run in"
    )
    # parse_known_args: `import kserve` parses sys.argv for its own flags too, so flags
    # meant for it (like --enable_docs_url) must not make ours fail.
    args, _unknown = parser.parse_known_args(argv)
    if args.backend == "huggingface" and not args.model_path:
        parser.error("--backend huggingface needs --model-path")
    return args


def build_model(args: argparse.Namespace) -> ChatModel:
    if args.backend == "builtin":
        return BuiltinChatModel(args.model_name)
    from .huggingface import HuggingFaceChatModel

    return HuggingFaceChatModel(
        args.model_name,
        args.model_path,
        max_new_tokens=args.max_new_tokens,
        download_dir=args.download_dir,
        device=args.device,
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    from .server import serve  # imports kserve, which configures its own logging

    model = build_model(args)
    model.load()
    serve(model, host=args.host, port=args.http_port, threads=args.threads)


if __name__ == "__main__":
    main()
