"""Invariant 4: a saved Des-Net is rebuilt by timm alone, in a process that never imports lets_core."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

import lets_core

TIMM_ONLY = r"""
import json, sys
import torch, timm
from safetensors.torch import load_file
from timm.models.vision_transformer import VisionTransformer

folder, probe_file = sys.argv[1], sys.argv[2]
probe = load_file(probe_file)

# Route 1: timm's own loader of a local folder (config.json + model.safetensors).
model = timm.create_model("local-dir:" + folder, pretrained=True).eval()
# Route 2: the raw keyword arguments and a strict state-dict load.
config = json.load(open(folder + "/config.json"))
manual = VisionTransformer(**config["model_args"]).eval()
manual.load_state_dict(load_file(folder + "/model.safetensors"), strict=True)

with torch.no_grad():
    for m in (model, manual):
        torch.testing.assert_close(m(probe["x"]), probe["logits"], rtol=1e-5, atol=1e-5)

# timm's own evaluation transform gives lets_core's inputs: the whole image, (pixels / 255 - mean) / std.
import numpy as np
from PIL import Image
from timm.data import create_transform, resolve_data_config
pixels = probe["pixels"].numpy()
x = create_transform(**resolve_data_config({}, model=model))(Image.fromarray(pixels))
torch.testing.assert_close(x, probe["normalized"], rtol=0, atol=1e-6)
assert not any(name.startswith("lets_core") for name in sys.modules), "lets_core was imported"
print("timm-only reload OK")
"""


@pytest.mark.parametrize("heads, depth, strategy", [(3, 6, "top-l2"), (2, 1, "continuous"), (4, 12, "bottom-l1")])
def test_saved_des_loads_in_timm_without_lets_core(tmp_path, heads, depth, strategy):
    torch.manual_seed(0)
    norm = lets_core.InputNorm((0.286,), (0.353,))  # as stage 1 records its data's
    aux = lets_core.record_input_norm(lets_core.AuxNet(lets_core.presets.tiny()), norm)
    des = lets_core.emit_des(aux, heads=heads, depth=depth, strategy=strategy)
    folder = lets_core.save_des(des, tmp_path / "des")
    x = torch.randn(3, 1, 28, 28)
    pixels = torch.randint(0, 256, (28, 28), dtype=torch.uint8)
    with torch.no_grad():
        save_file({"x": x, "logits": des(x), "pixels": pixels,
                   "normalized": ((pixels.float() / 255 - 0.286) / 0.353).unsqueeze(0)},
                  str(tmp_path / "probe.safetensors"))
    config = json.loads((folder / "config.json").read_text())
    assert config["model_args"]["embed_dim"] == heads * 16 and config["model_args"]["depth"] == depth
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_HUB_OFFLINE"] = "1"
    done = subprocess.run([sys.executable, "-c", TIMM_ONLY, str(folder), str(tmp_path / "probe.safetensors")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "timm-only reload OK" in done.stdout


def test_save_des_rejects_foreign_models(tmp_path):
    from timm.models.vision_transformer import VisionTransformer
    with pytest.raises(ValueError, match="needs a Des-Net made by lets_core.emit_des"):
        lets_core.save_des(VisionTransformer(img_size=28, patch_size=7, in_chans=1, depth=1, embed_dim=16,
                                             num_heads=1), tmp_path)
