"""PostLens vs the seed's stack (PyTorch + transformers) on the same shapes, same image, same question.

Uses the random-weight checkpoint with the real Qwen3-VL-2B shapes that `postlens bench --random qwen3-vl-2b`
writes (speed does not depend on weight values), runs `postlens bench --model DIR --json`, then transformers on
the CPU with the same thread count in each dtype asked for (`--dtype fp32|bf16|both`: bf16 is PyTorch's
fastest on CPUs with AVX512-BF16 or AMX, where oneDNN uses them), each in its own process so that peak RSS is
its own, and prints all of them with PostLens's speed-up over the best transformers run.
Not run in CI (needs ~9 GB of RAM for fp32 weights and a few minutes).

    python3 -m pip install "torch==2.13.0+cpu" transformers==5.24.0 pillow
    python3 bench/compare_transformers.py [--model ~/.cache/postlens/random/qwen3-vl-2b] [--threads 2] [--format q8] [--dtype both]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import AutoImageProcessor, Qwen3VLForConditionalGeneration

REPO = Path(__file__).resolve().parents[1]
QUESTION = "What does this post advertise, and at what price? Answer briefly in one sentence please."


def test_image(side: int) -> Image.Image:
    """The same synthetic image as `postlens bench` (gradients and a checkerboard)."""
    y, x = np.mgrid[0:side, 0:side]
    r = (x * 255 // max(1, side - 1)).astype(np.uint8)
    g = (y * 255 // max(1, side - 1)).astype(np.uint8)
    b = np.where(((x // 16 + y // 16) % 2) == 0, 230, 20).astype(np.uint8)
    return Image.fromarray(np.stack([r, g, b], axis=-1), "RGB")


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def run_transformers(model_dir: Path, threads: int, side: int, decode_tokens: int, dtype: str) -> dict:
    torch.set_num_threads(threads)
    start = time.perf_counter()
    model = Qwen3VLForConditionalGeneration.from_pretrained(model_dir, dtype=DTYPES[dtype], attn_implementation="sdpa")
    model.eval()
    load_ms = (time.perf_counter() - start) * 1000
    processor = AutoImageProcessor.from_pretrained(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))

    start = time.perf_counter()
    image = processor(images=[test_image(side)], return_tensors="pt")
    grid = image["image_grid_thw"]
    n_image = int(grid.prod() // 4)
    ids = [tok.token_to_id("<|im_start|>")] + tok.encode("user\n", add_special_tokens=False).ids
    ids += [config["vision_start_token_id"]] + [config["image_token_id"]] * n_image + [config["vision_end_token_id"]]
    ids += tok.encode(QUESTION, add_special_tokens=False).ids + [tok.token_to_id("<|im_end|>")]
    ids += tok.encode("\n", add_special_tokens=False).ids + [tok.token_to_id("<|im_start|>")]
    ids += tok.encode("assistant\n", add_special_tokens=False).ids
    input_ids = torch.tensor([ids])
    mm = (input_ids == config["image_token_id"]).int()
    preprocess_ms = (time.perf_counter() - start) * 1000

    with torch.inference_mode():
        start = time.perf_counter()
        pixel_values = image["pixel_values"].to(DTYPES[dtype])
        model.model.get_image_features(pixel_values, grid)
        vision_ms = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        out = model.generate(input_ids=input_ids, pixel_values=pixel_values, image_grid_thw=grid, mm_token_type_ids=mm,
                             attention_mask=torch.ones_like(input_ids), max_new_tokens=1, do_sample=False)
        ttft_ms = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        out = model.generate(input_ids=input_ids, pixel_values=pixel_values, image_grid_thw=grid, mm_token_type_ids=mm,
                             attention_mask=torch.ones_like(input_ids), max_new_tokens=decode_tokens, min_new_tokens=decode_tokens,
                             do_sample=False)
        total_ms = (time.perf_counter() - start) * 1000
    generated = out.shape[1] - input_ids.shape[1]
    decode_s = max(1e-9, (total_ms - ttft_ms) / 1000)
    return {
        "load_ms": load_ms, "preprocess_ms": preprocess_ms, "vision_ms": vision_ms, "ttft_ms": ttft_ms + preprocess_ms,
        "prefill_ms": ttft_ms - vision_ms, "prompt_tokens": len(ids),
        "decode_tokens_per_s": max(0, generated - 1) / decode_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "dtype": dtype, "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def run_postlens(model_dir: Path, threads: int, side: int, decode_tokens: int, fmt: str) -> dict:
    binary = os.environ.get("POSTLENS_BINARY", str(REPO / ".build" / "release" / "postlens"))
    out = subprocess.run([binary, "bench", "--model", str(model_dir), "--threads", str(threads), "--image-size", str(side),
                          "--decode-tokens", str(decode_tokens), "--format", fmt, "--json"],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def run_transformers_subprocess(args, dtype: str) -> dict:
    """One transformers run in a fresh process (its own peak RSS, nothing cached from another dtype)."""
    out = subprocess.run([sys.executable, __file__, "--model", args.model, "--threads", str(args.threads),
                          "--image-size", str(args.image_size), "--decode-tokens", str(args.decode_tokens),
                          "--only-transformers", dtype], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(Path.home() / ".cache/postlens/random/qwen3-vl-2b"))
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--decode-tokens", type=int, default=64)
    parser.add_argument("--format", default="q8")
    parser.add_argument("--dtype", choices=["fp32", "bf16", "both"], default="both")
    parser.add_argument("--only-transformers", choices=list(DTYPES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    model_dir = Path(args.model).expanduser()
    if args.only_transformers:
        print(json.dumps(run_transformers(model_dir, args.threads, args.image_size, args.decode_tokens, args.only_transformers)))
        return
    ours = run_postlens(model_dir, args.threads, args.image_size, args.decode_tokens, args.format)
    dtypes = ["fp32", "bf16"] if args.dtype == "both" else [args.dtype]
    theirs = {d: run_transformers_subprocess(args, d) for d in dtypes}
    rows = [("vision ms", "vision_ms", False), ("time to first token ms", "ttft_ms", False),
            ("decode tokens/s", "decode_tokens_per_s", True), ("peak RSS MB", "peak_rss_mb", False)]
    header = f"{'':26}{'PostLens ' + args.format + ' (' + ours.get('isa_level', '?') + ')':>24}"
    header += "".join(f"{'transformers ' + d:>20}" for d in dtypes) + f"{'vs best':>10}"
    print(header)
    for label, key, higher_better in rows:
        x = ours[key]
        values = [theirs[d][key] for d in dtypes]
        best = max(values) if higher_better else min(values)
        ratio = (x / best) if higher_better else (best / x if x else float("nan"))
        print(f"{label:26}{x:24.1f}" + "".join(f"{v:20.1f}" for v in values) + f"{ratio:9.2f}x")
    print(json.dumps({"postlens": ours, "transformers": theirs}, indent=1))


if __name__ == "__main__":
    main()
