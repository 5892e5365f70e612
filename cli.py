"""`strata train` and `strata evaluate` (also `python -m strata ...`)."""
from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="strata", description="strata: train and evaluate MNIST models")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train an MNIST model")
    t.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    t.add_argument("--backend", default="Autodiff(NumPy())", help="backend stack, e.g. 'Autodiff(NumPy())'")
    t.add_argument("--epochs", type=int, default=5)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--data", default=None, help="directory holding mnist/ (default: $STRATA_DATA, "
                                                "then the cache dir, then a download)")
    t.add_argument("--out", default="runs/mnist", help="directory for checkpoints, curves.png, history.json")
    t.add_argument("--resume", default=None, help="checkpoint to resume from (e.g. OUT/last.safetensors)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--patience", type=int, default=0, help="stop after this many epochs without a "
                                                           "better test accuracy (0: never)")
    t.add_argument("--train-subset", type=int, default=0, help="use only the first N training images")
    t.add_argument("--test-subset", type=int, default=0, help="use only the first N test images")
    t.add_argument("--checkpoint-every", type=int, default=200,
                   help="also write OUT/last.safetensors every N batches (0: only at epoch ends)")
    t.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    e = sub.add_parser("evaluate", help="test accuracy of a checkpoint")
    e.add_argument("checkpoint")
    e.add_argument("--backend", default="Autodiff(NumPy())")
    e.add_argument("--data", default=None)
    e.add_argument("--batch-size", type=int, default=1000)
    return p


def _positive(args, names) -> None:
    for n in names:
        v = getattr(args, n)
        if v is None:
            continue
        if v < 0 or (n in ("epochs", "batch_size") and v == 0):
            raise SystemExit(f"strata: --{n.replace('_', '-')} must be positive, got {v}")
    if not args.lr > 0:
        raise SystemExit(f"strata: --lr must be positive, got {args.lr}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .core.errors import StrataError
    from .data.datasets import DatasetError
    try:
        if args.command == "train":
            _positive(args, ["epochs", "batch_size", "patience", "train_subset", "test_subset",
                             "checkpoint_every"])
            from .trainer import Trainer
            tr = Trainer(args)
            if args.resume:
                tr.restore(args.resume)
            summary = tr.run()
            from . import distributed as dist
            if dist.is_main_process():
                print(f"best test accuracy {summary['best_test_acc'] * 100:.2f}% "
                      f"(checkpoints and curves.png in {args.out})")
            return 0
        return _evaluate(args)
    except (DatasetError, StrataError, FileNotFoundError, ValueError) as e:
        print(f"strata: error: {e}", file=sys.stderr)
        return 2


def _evaluate(args) -> int:
    import strata as st
    from .trainer import CKPT_FORMAT, accuracy, build_model, find_mnist
    B = st.backend(args.backend)
    ck = st.load(args.checkpoint, backend=B)
    if not isinstance(ck, dict) or ck.get("format") != CKPT_FORMAT:
        raise ValueError(f"{args.checkpoint} is not a strata training checkpoint (written by `strata train`)")
    model = build_model(ck["model_name"], B)
    model.load_state_dict(ck["model"])
    test = find_mnist(args.data, False)
    x, y = test.arrays(normalize=True)
    acc = accuracy(model, x, y, B, args.batch_size)
    print(f"{args.checkpoint}: {ck['model_name']} after {ck['epoch']} epochs, test accuracy "
          f"{acc * 100:.2f}% on {len(x)} images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
