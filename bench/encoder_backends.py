"""CPU encoder alternatives not shipped: torch fp32 (scenegrep's) vs ONNX Runtime fp32 vs torch dynamic int8.

The vision tower + projection of a ViT-B/32-sized CLIPModel with random
weights (the real model's compute), batch 32, best of 3 per round, rounds
alternating so load from other processes hits every row alike. ONNX Runtime
comes with Chroma; exporting needs two packages scenegrep does not install:

    pip install onnx onnxscript
    python bench/encoder_backends.py            # ~2 min on 2 cores (15 s of it the ONNX export)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    import onnxruntime
    import torch
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig()).eval()

    class Vision(torch.nn.Module):
        def __init__(self, clip):
            super().__init__()
            self.clip = clip

        def forward(self, pixel_values):
            out = self.clip.get_image_features(pixel_values=pixel_values)
            return out if isinstance(out, torch.Tensor) else out.pooler_output

    vision = Vision(model).eval()
    pixels = torch.randn(args.batch, 3, 224, 224)
    path = os.path.join(tempfile.mkdtemp(), "vision.onnx")
    start = time.perf_counter()
    torch.onnx.export(vision, (pixels[:2],), path, input_names=["pixel_values"], output_names=["features"],
                      dynamic_shapes={"pixel_values": {0: torch.export.Dim("batch")}}, dynamo=True, optimize=True)
    export_s = time.perf_counter() - start
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    int8 = torch.ao.quantization.quantize_dynamic(vision, {torch.nn.Linear}, dtype=torch.qint8)

    def torch_run(module):
        def run(x):
            with torch.inference_mode():
                return module(x).numpy()
        return run

    backends = {
        "torch fp32 (scenegrep)": torch_run(vision),
        "onnxruntime fp32": lambda x: session.run(None, {"pixel_values": x.numpy()})[0],
        "torch dynamic int8": torch_run(int8),
    }
    reference = backends["torch fp32 (scenegrep)"](pixels[:8])
    best = {name: float("inf") for name in backends}
    for _ in range(args.rounds):
        for name, run in backends.items():
            run(pixels[:4])  # warm-up
            for _ in range(3):
                start = time.perf_counter()
                run(pixels)
                best[name] = min(best[name], time.perf_counter() - start)
    base = args.batch / best["torch fp32 (scenegrep)"]
    print(f"ViT-B/32-sized vision tower, batch {args.batch}, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f}; ONNX export {export_s:.1f} s")
    print(f"{'backend':26} {'images/s':>9} {'vs torch fp32':>14} {'min cosine':>11} {'max |diff|':>11}")
    for name, run in backends.items():
        out = run(pixels[:8])
        cosine = (out * reference).sum(1) / (np.linalg.norm(out, axis=1) * np.linalg.norm(reference, axis=1))
        rate = args.batch / best[name]
        print(f"{name:26} {rate:9.1f} {rate / base:13.2f}x {cosine.min():11.6f} {np.abs(out - reference).max():11.2e}")


if __name__ == "__main__":
    main()
