#!/usr/bin/env python3
"""Six real photographs as IS-Net inputs, for the sweep at scale (bench/sweep_bench.ts).

The images are scikit-image's sample data (public domain or CC0, as documented in
skimage/data/_fetchers.py), taken from Debian's python3-skimage package, which is downloaded and
unpacked here, not installed. Each is resized to 1024 x 1024 and normalised as
@imgly/background-removal feeds the model: (pixel - 128) / 256 per channel.

Needs: apt-get install python3-pil python3-numpy (and network access to Debian's archive).
Writes .cache/isnet_images.safetensors: "input", float32 [6, 3, 1024, 1024].
Run: /usr/bin/python3 bench/isnet_images.py
"""
import json
import pathlib
import subprocess
import tempfile

import numpy as np
from PIL import Image

# Search and held-out parts alternate (the sweep holds out every second sample).
IMAGES = [
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "camera.png",
    "horse.png",
]
SIZE = 1024


def main() -> None:
    out = pathlib.Path(__file__).resolve().parent.parent / ".cache" / "isnet_images.safetensors"
    out.parent.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", "python3-skimage"], cwd=tmp, check=True)
        deb = next(pathlib.Path(tmp).glob("python3-skimage_*.deb"))
        subprocess.run(["dpkg", "-x", str(deb), tmp + "/x"], check=True)
        data = next(pathlib.Path(tmp, "x").glob("usr/lib/python3/dist-packages/skimage/data"))
        batch = np.stack([
            (np.asarray(
                Image.open(data / name).convert("RGB").resize((SIZE, SIZE), Image.BILINEAR),
                dtype=np.float32,
            ) - 128.0).transpose(2, 0, 1) / 256.0
            for name in IMAGES
        ]).astype("<f4")
    header = json.dumps({
        "input": {"dtype": "F32", "shape": list(batch.shape), "data_offsets": [0, batch.nbytes]},
        "__metadata__": {"images": ",".join(IMAGES), "source": "Debian python3-skimage"},
    }).encode()
    header += b" " * (-len(header) % 8)
    with open(out, "wb") as f:
        f.write(len(header).to_bytes(8, "little") + header + batch.tobytes())
    print(f"{out}: {batch.shape}")


if __name__ == "__main__":
    main()
