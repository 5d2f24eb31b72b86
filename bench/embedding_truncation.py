"""Does cutting texts to ``Encoder.max_chars`` change what the encoder reads? Per labelled file.

The encoder keeps its first ``max_tokens`` tokens, so a text's vector depends only on its beginning. Switchboard hands
the tokenizer the first ``max_chars`` characters (``app.embedding.encoder.CHARS_PER_TOKEN_BOUND``), not
megabytes. This prints, for each file, how many prompts are longer than that and on how many the
token ids the model reads differ with the cut: zero means every vector, so every profile built
from the file and every routing decision on it, is the same as without it.

    .venv/bin/python bench/embedding_truncation.py --data ../shared/data/routing/routerbench_train.jsonl ../shared/data/routing/routerdc7_train.jsonl
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.embedding.encoder import OnnxEncoder, load_encoder
from app.selection.labelled import read_labelled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, nargs="+", required=True)
    args = parser.parse_args()
    encoder = load_encoder(backend="onnx")
    assert isinstance(encoder, OnnxEncoder)
    tokenizer = encoder._tokenizer
    print(f"max_chars = {encoder.max_chars}")
    print(f"{'file':<28} {'prompts':>8} {'longest':>8} {'> max_chars':>12} {'ids differ':>11}")
    for path in args.data:
        prompts = read_labelled([path]).prompts
        longer = [p for p in prompts if len(p) > encoder.max_chars]
        differ = sum(
            tokenizer.encode(p).ids != tokenizer.encode(p[: encoder.max_chars]).ids for p in longer
        )
        longest = max(len(p) for p in prompts)
        print(f"{path.name:<28} {len(prompts):>8} {longest:>8} {len(longer):>12} {differ:>11}")


if __name__ == "__main__":
    main()
