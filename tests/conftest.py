"""Shared fixtures: the real public data beside the repository, and the CLI as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# The suite is written for the CPU (exact tensors, bit-identical resumes): a GPU stays hidden
# unless ALIGNKIT_TEST_CUDA=1, set to run the CUDA-only tests (QLoRA); the others assume the CPU.
if os.environ.get("ALIGNKIT_TEST_CUDA") != "1":
    os.environ["CUDA_VISIBLE_DEVICES"] = ""

import pytest
import torch

# The tests' models are tiny: one thread runs them faster than two fighting over
# small matmuls, and keeps subprocess tests from oversubscribing the cores.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repository; the test skips when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder not found at {SHARED_DATA} (it sits beside the repository)")
    return SHARED_DATA


def run_cli(*args: str, cwd: Path | None = None, input: str | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``alignkit ARGS`` in a fresh interpreter, as a user would, and capture its output."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", NO_COLOR="1", COLUMNS="120", OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "alignkit", *map(str, args)],
        cwd=cwd, input=input, capture_output=True, text=True, timeout=timeout, env=env,
    )


@pytest.fixture(scope="session")
def cli():
    """The :func:`run_cli` helper as a fixture (session-wide: it is a plain function)."""
    return run_cli


# -- a tiny learnable world for trainer tests --------------------------------------------------

TOY_WORDS = ["red", "blue", "green", "cat", "dog", "bird", "runs", "jumps", "sleeps", "fast",
             "slow", "the", "a", "big", "small", "repeat", "good", "bad", "yes", "no"]
TOY_MODEL = dict(model_type="llama", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                 tie_word_embeddings=False)


@pytest.fixture(scope="session")
def toy_model(tmp_path_factory):
    """A word-level tokenizer directory and a tiny Llama ``config.json``: ``(tokenizer, config)``.

    Trainer tests build their model with ``model.init_from_config`` from these,
    so no weights are downloaded or stored.
    """
    import json

    from alignkit.data.tokenizer_build import word_level_tokenizer

    root = tmp_path_factory.mktemp("toy_model")
    tokenizer = word_level_tokenizer(TOY_WORDS)
    tokenizer.save_pretrained(root / "tokenizer")
    (root / "config.json").write_text(json.dumps(dict(TOY_MODEL, vocab_size=len(tokenizer))))
    return root / "tokenizer", root / "config.json"


def toy_pairs(n: int, seed: int = 0) -> list[dict]:
    """Preference pairs with a learnable rule: the chosen response repeats the prompt's colour.

    Prompt ``"repeat red cat"``; chosen ``"red red"``; rejected another colour twice.
    """
    import random

    rng = random.Random(seed)
    colours, animals = TOY_WORDS[:3], TOY_WORDS[3:6]
    rows = []
    for _ in range(n):
        colour, animal = rng.choice(colours), rng.choice(animals)
        other = rng.choice([c for c in colours if c != colour])
        rows.append({"prompt": f"repeat {colour} {animal}", "chosen": f"{colour} {colour}",
                     "rejected": f"{other} {other}"})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """Write ``rows`` as JSONL and return the path."""
    import json

    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def toy_data():
    """Toy-data helpers: ``toy_data.pairs(n, seed)``, ``toy_data.write_jsonl(path, rows)``."""
    import types

    return types.SimpleNamespace(pairs=toy_pairs, write_jsonl=write_jsonl)
