"""Does a local model copy from its context? Teacher-forced accuracy on an SFT run's dev turns.

Every target token of the dev samples that an SFT run stored (``OUT_DIR/data.pt``) is
predicted with teacher forcing; the script counts the wrong ones, digits apart (in the
``find`` reader's turns the digits are the values read off tool results, so they can only be
right by copying), and prints a few turns with every wrong token shown as
``[target|predicted]``.

    python benchmarks/nano_copy_probe.py --model src/parlswarm/weights/nano --data runs/sft-nano-find [--samples 24] [--show 4]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from parlswarm.models.local import LocalModel, module_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a save_pretrained folder with the run's tokenizer")
    parser.add_argument("--data", type=Path, required=True, help="an SFT run folder (its data.pt) or the data.pt file")
    parser.add_argument("--samples", type=int, default=24)
    parser.add_argument("--show", type=int, default=4, help="turns to print with their wrong tokens marked")
    args = parser.parse_args()
    data_file = args.data / "data.pt" if args.data.is_dir() else args.data
    if not data_file.is_file():
        raise SystemExit(f"no SFT samples at {data_file}: run `parlswarm train sft` first")
    torch.set_num_threads(2)
    lm = LocalModel.from_pretrained(args.model)
    lm.model.eval()
    dev = torch.load(data_file, weights_only=False)["dev"][: args.samples]
    counts = {"digit": [0, 0], "other": [0, 0]}  # [wrong, total]
    for n, sample in enumerate(dev):
        ids = sample["ids"]
        with torch.no_grad():
            predicted = lm.model(torch.tensor([ids], device=module_device(lm.model))).logits[0].argmax(-1).tolist()
        shown = []
        for t in range(1, len(ids)):
            if not sample["mask"][t]:
                continue
            text = lm.tokenizer.decode([ids[t]])
            right = predicted[t - 1] == ids[t]
            kind = "digit" if text.strip().isdigit() else "other"
            counts[kind][0] += not right
            counts[kind][1] += 1
            shown.append(text if right else f"[{text}|{lm.tokenizer.decode([predicted[t - 1]])}]")
        if n < args.show:
            print(f"--- {sample['kind']} turn:\n{''.join(shown)}\n")
    for kind, (wrong, total) in counts.items():
        print(f"{kind} targets: {wrong} of {total} wrong ({wrong / max(1, total):.1%})")


if __name__ == "__main__":
    main()
