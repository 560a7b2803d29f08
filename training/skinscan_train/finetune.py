"""Full fine-tune of EfficientNet-Lite0: every block, from the ImageNet weights.

On 2 CPU cores one such epoch takes hours, so ``train.py`` trains only the upper blocks on cached
features. When a GPU is at hand (``training/finetune.py``), this module trains the whole network
and ``train.py --image-checkpoint`` then builds everything else (gate, calibration, stacker, tiers,
export, report) from its checkpoint, on this machine, exactly as for the CPU model.

The data travels as a *pack*: the same canonical 224x224 training and validation images
``train.py`` caches (same split, same seed), losslessly re-encodable as WebP, plus the ImageNet
weights. The test set is never packed.

A run trains a few hyper-parameter configurations within a time budget, keeps each one's best
epoch (exponential moving average of the weights, scored on validation AUC + 7-class balanced
accuracy, as ``train.py`` scores), then tries a greedy *model soup* (Wortsman et al. 2022): the
configurations share their initialisation, so averaging their weights is one model of the same
size; a member joins only if the validation score improves. BatchNorm statistics of an average
are re-estimated on training images.
"""
from __future__ import annotations

import copy
import io
import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import ensemble, image_models as im, metrics


@dataclass(frozen=True)
class Config:
    name: str
    lr: float = 5e-4
    weight_decay: float = 0.05
    epochs: int = 30
    warmup_epochs: float = 1.0
    batch: int = 128
    dropout: float = 0.3
    drop_connect: float = 0.2
    label_smoothing: float = 0.1
    nv_keep: float = 0.5
    aug_strength: float = 1.0
    ema_decay: float = 0.995


CONFIGS = {
    # Decided before the run; the validation score picks among them, the test set never sees them.
    "default": [
        Config("lr5e-4", lr=5e-4, epochs=30),
        Config("lr1e-3", lr=1e-3, epochs=30),
        Config("lr3e-4-e40", lr=3e-4, epochs=40),
        Config("lr6e-4-e40-aug1.3", lr=6e-4, epochs=40, aug_strength=1.3),
    ],
    # Second round, after "default" showed validation AUC peaking within ~10 epochs and then
    # falling: short schedules that end at the peak, several seeds, for the soup to average.
    "short": [Config(f"short{i}-lr{lr:g}", lr=lr, epochs=12, aug_strength=1.3) for i, lr in enumerate([6e-4, 8e-4, 6e-4, 8e-4, 5e-4, 7e-4, 6e-4, 8e-4])],
    "smoke": [Config("smoke-a", epochs=1, batch=16), Config("smoke-b", lr=1e-3, epochs=1, batch=16)],
}


# ---------------------------------------------------------------- the pack
def _encode(u8: np.ndarray) -> bytes:
    from PIL import Image

    b = io.BytesIO()
    Image.fromarray(np.asarray(u8)).save(b, "WEBP", quality=PACK_QUALITY)
    return b.getvalue()


PACK_QUALITY = 80  # WebP; ~3 KB per 224x224 image, so train + validation fit the GPU machine's 64 MiB
# Lossy, and it shows: `finetune.py compare` scores round 1 at validation AUC 0.884 on these
# images against 0.899 on train.py's originals (one view). The network also trained on them.


def _decode(b: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(b)).convert("RGB"), dtype=np.uint8)


def write_pack(out: Path, splits: dict, weights_path: Path, info: dict, threads: int = 2) -> dict:
    """``splits``: name -> (u8 [N,224,224,3], y7 [N], ym [N]). Writes images.npz, imagenet_fp16.pt, pack.json."""
    out.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name, (u8, y7, ym) in splits.items():
        with ThreadPoolExecutor(threads) as ex:
            blobs = list(ex.map(_encode, (u8[i] for i in range(len(u8)))))
        arrays[f"{name}_off"] = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
        arrays[f"{name}_bytes"] = np.frombuffer(b"".join(blobs), np.uint8)
        arrays[f"{name}_y7"], arrays[f"{name}_ym"] = np.asarray(y7, np.int64), np.asarray(ym, np.int64)
    np.savez(out / "images.npz", **arrays)
    # ImageNet weights without the 1000-way classifier, in half precision (a fine-tune's start point;
    # BatchNorm statistics stay float32).
    st = torch.load(weights_path, map_location="cpu", weights_only=True)
    st = {k: (v.half() if v.is_floating_point() and "running" not in k else v) for k, v in st.items() if not k.startswith("_fc.")}
    torch.save(st, out / "imagenet_fp16.pt")
    info = {**info, "webp_quality": PACK_QUALITY, "counts": {n: int(len(s[0])) for n, s in splits.items()}}
    (out / "pack.json").write_text(json.dumps(info, indent=1))
    return info


def read_pack(pack: Path, threads: int = 16) -> tuple[dict, dict]:
    z = np.load(pack / "images.npz")
    out = {}
    for name in ("train", "val"):
        off, raw = z[f"{name}_off"], z[f"{name}_bytes"]
        blobs = [raw[off[i]:off[i + 1]].tobytes() for i in range(len(off) - 1)]
        with ThreadPoolExecutor(threads) as ex:
            u8 = np.stack(list(ex.map(_decode, blobs)))
        out[name] = (u8, z[f"{name}_y7"], z[f"{name}_ym"])
    return out, json.loads((pack / "pack.json").read_text())


def imagenet_net(pack: Path):
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0", num_classes=7)
    st = {k: v.float() for k, v in torch.load(pack / "imagenet_fp16.pt", map_location="cpu", weights_only=True).items()}
    missing, unexpected = net.load_state_dict(st, strict=False)
    if unexpected or any(not k.startswith("_fc.") for k in missing):
        raise RuntimeError(f"ImageNet weights do not fit: missing {missing}, unexpected {unexpected}")
    return net


# ---------------------------------------------------------------- training
def predict(model: nn.Module, u8: torch.Tensor, batch: int = 500) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad(), _autocast(u8.device):
        for i in range(0, len(u8), batch):
            x = im.to_input(u8[i:i + batch]).contiguous(memory_format=torch.channels_last)
            out.append(F.softmax(model(x).float(), 1).cpu().numpy())
    return np.concatenate(out)


def score(p7: np.ndarray, y7: np.ndarray, ym: np.ndarray) -> tuple[float, dict]:
    auc = metrics.auc(ym, ensemble.malignant_prob(p7))
    bal = metrics.multiclass(y7, p7)["balanced_accuracy"]
    return auc + bal, {"val_auc": auc, "val_bal_acc": bal}


def _autocast(dev: torch.device):
    if dev.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def _cpu_state(model: nn.Module) -> dict:
    return {k: v.detach().float().cpu().clone() if v.is_floating_point() else v.detach().cpu().clone() for k, v in model.state_dict().items()}


def train_config(cfg: Config, base_net, cut: int, data: dict, dev: torch.device, seed: int, deadline: float,
                 log=print) -> dict:
    """Train one configuration; returns its best EMA state, score and history."""
    u8_tr, y7_tr, _ = data["train"]
    u8_val, y7_val, ym_val = data["val"]
    torch.manual_seed(seed)
    model = im.Full(copy.deepcopy(base_net), cut, dropout=cfg.dropout, drop_connect=cfg.drop_connect)
    model = model.to(dev).to(memory_format=torch.channels_last)
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    pairs = list(zip(ema.state_dict().values(), model.state_dict().values()))
    ema_f = [e for e, _ in pairs if e.is_floating_point()]
    model_f = [m for e, m in pairs if e.is_floating_point()]
    ints = [(e, m) for e, m in pairs if not e.is_floating_point()]
    rng = np.random.default_rng(seed)
    g = torch.Generator(device=dev).manual_seed(seed)
    w = im.class_weights(y7_tr[im.epoch_indices(y7_tr, np.random.default_rng(0), keep=cfg.nv_keep)], 7).to(dev)
    loss_fn = nn.CrossEntropyLoss(weight=w, label_smoothing=cfg.label_smoothing)
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg.lr, fused=dev.type == "cuda")
    y_dev = torch.from_numpy(y7_tr).to(dev)
    steps_per_epoch = math.ceil(len(im.epoch_indices(y7_tr, np.random.default_rng(0), keep=cfg.nv_keep)) / cfg.batch)
    total = steps_per_epoch * cfg.epochs
    warm = max(1, int(cfg.warmup_epochs * steps_per_epoch))
    best = {"score": -1.0, "state": None, "epoch": 0, "metrics": {}}
    history, step, t0 = [], 0, time.time()
    for ep in range(cfg.epochs):
        model.train()
        te, tot, cnt = time.time(), 0.0, 0
        idx = im.epoch_indices(y7_tr, rng, keep=cfg.nv_keep)
        for i in range(0, len(idx), cfg.batch):
            b = torch.from_numpy(np.sort(idx[i:i + cfg.batch])).to(dev)
            lr = cfg.lr * (step + 1) / warm if step < warm else cfg.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))
            for gp in opt.param_groups:
                gp["lr"] = lr
            with torch.no_grad():
                x = im.augment(im.to_input(u8_tr[b]), g, cfg.aug_strength).contiguous(memory_format=torch.channels_last)
            with _autocast(dev):
                loss = loss_fn(model(x).float(), y_dev[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            with torch.no_grad():
                d = min(cfg.ema_decay, (1 + step) / (10 + step))
                torch._foreach_lerp_(ema_f, model_f, 1 - d)
                for e, m in ints:
                    e.copy_(m)
            tot += float(loss.detach()) * len(b); cnt += len(b)
        s, mets = score(predict(ema, u8_val), y7_val, ym_val)
        rec = {"epoch": ep + 1, "train_loss": tot / max(cnt, 1), "seconds": time.time() - te, **mets}
        history.append(rec)
        log(f"  [{cfg.name}] " + " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()))
        if s > best["score"]:
            best = {"score": s, "state": _cpu_state(ema), "epoch": ep + 1, "metrics": mets}
        if time.time() > deadline:
            log(f"  [{cfg.name}] stopped at epoch {ep + 1}: time budget spent")
            break
    return {"config": asdict(cfg), **best, "history": history, "seconds": time.time() - t0,
            "epoch_seconds": float(np.median([h["seconds"] for h in history]))}


def recalibrate_bn(model: nn.Module, u8: torch.Tensor, n: int = 4096, batch: int = 256, seed: int = 0):
    """Re-estimate BatchNorm running statistics (cumulative average) on plain training images."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats(); m.momentum = None
    model.train()
    pick = torch.from_numpy(np.sort(np.random.default_rng(seed).choice(len(u8), min(n, len(u8)), replace=False))).to(u8.device)
    with torch.no_grad(), _autocast(u8.device):
        for i in range(0, len(pick), batch):
            model(im.to_input(u8[pick[i:i + batch]]).contiguous(memory_format=torch.channels_last))
    for m in bns:
        m.momentum = 0.1
    model.eval()


def greedy_soup(runs: list[dict], base_net, cut: int, data: dict, dev: torch.device, log=print) -> dict:
    """Average configurations' best states in order of validation score while the score improves."""
    u8_tr = data["train"][0]
    u8_val, y7_val, ym_val = data["val"]
    order = sorted(range(len(runs)), key=lambda i: -runs[i]["score"])
    members, best_score, best_state = [order[0]], runs[order[0]]["score"], runs[order[0]]["state"]
    model = im.Full(copy.deepcopy(base_net), cut).to(dev).to(memory_format=torch.channels_last)
    for i in order[1:]:
        trial = members + [i]
        avg = {k: (sum(runs[j]["state"][k] for j in trial) / len(trial)) if runs[i]["state"][k].is_floating_point()
               else runs[i]["state"][k] for k in best_state}
        model.load_state_dict(avg)
        recalibrate_bn(model, u8_tr)
        s, mets = score(predict(model, u8_val), y7_val, ym_val)
        log(f"  soup {[runs[j]['config']['name'] for j in trial]}: score {s:.4f} {mets} (best {best_score:.4f})")
        if s > best_score:
            members, best_score, best_state = trial, s, _cpu_state(model)
    return {"members": [runs[j]["config"]["name"] for j in members], "score": best_score, "state": best_state}


def run(pack: Path, out: Path, configs: str = "default", budget_s: float = 380.0, seed: int = 20261126,
        device: str = "auto", log=print) -> dict:
    t_start = time.time()
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    arrays, info = read_pack(pack)
    data = {k: (torch.from_numpy(u8).to(dev), y7, ym) for k, (u8, y7, ym) in arrays.items()}  # uint8 NHWC
    log(f"pack: {info['counts']} on {dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'}), "
        f"read in {time.time() - t_start:.0f}s")
    base = imagenet_net(pack)
    cut = int(info["cut"])
    deadline = t_start + budget_s
    runs = []
    for i, cfg in enumerate(CONFIGS[configs]):
        left = deadline - time.time()
        if runs:
            per_epoch = max(r["epoch_seconds"] for r in runs) + 1.0
            fit = int(left // per_epoch)
            if fit < max(3, cfg.epochs // 3):
                log(f"skip {cfg.name}: {left:.0f}s left, {per_epoch:.1f}s per epoch")
                continue
            if fit < cfg.epochs:
                cfg = replace(cfg, epochs=fit)  # shortened before it starts, so its schedule still completes
        log(f"config {cfg}")
        r = train_config(cfg, base, cut, data, dev, seed + i, deadline, log)
        runs.append(r)
        log(f"  -> best epoch {r['epoch']} score {r['score']:.4f} {r['metrics']} in {r['seconds']:.0f}s")
        _save(out, runs, None, cut, info, dev, t_start)
    soup = greedy_soup(runs, base, cut, data, dev, log) if len(runs) > 1 else None
    return _save(out, runs, soup, cut, info, dev, t_start)


def _save(out: Path, runs: list[dict], soup: dict | None, cut: int, info: dict, dev, t_start: float) -> dict:
    best_run = max(runs, key=lambda r: r["score"])
    use_soup = soup is not None and len(soup["members"]) > 1 and soup["score"] > best_run["score"]
    state = soup["state"] if use_soup else best_run["state"]
    summary = {
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "seconds": round(time.time() - t_start, 1),
        "cut": cut,
        "pack": info,
        "chosen": {"soup": soup["members"]} if use_soup else {"config": best_run["config"]["name"], "epoch": best_run["epoch"]},
        "val_score": soup["score"] if use_soup else best_run["score"],
        "runs": [{k: v for k, v in r.items() if k != "state"} for r in runs],
        "soup": {k: v for k, v in soup.items() if k != "state"} if soup else None,
    }
    torch.save({"model": state, "cut": cut, "summary": summary}, out / "effnet_full.pt")
    (out / "finetune.json").write_text(json.dumps(summary, indent=1))
    return summary


# ---------------------------------------------------------------- comparing checkpoints
def turn_logits(model: nn.Module, u8: torch.Tensor, turns: int, batch: int = 32) -> np.ndarray:
    """[N, turns, 7] logits of every validation image under its first ``turns`` quarter turns."""
    model.eval()
    out = []
    with torch.no_grad(), _autocast(u8.device):
        for i in range(0, len(u8), batch):
            x = im.to_input(u8[i:i + batch])
            views = torch.cat([im.quarter_turns(x[j:j + 1], turns) for j in range(len(x))])
            out.append(model(views.contiguous(memory_format=torch.channels_last)).float().cpu().numpy().reshape(len(x), turns, -1))
    return np.concatenate(out)


def compare(pack: Path, checkpoints: list[Path], turns: int = 4, device: str = "auto", log=print) -> list[dict]:
    """Validation score (AUC + 7-class balanced accuracy, as ``run`` scores) of fine-tuned
    checkpoints alone and averaged, at 1, 2 and ``turns`` quarter turns, and of their weight
    average (BatchNorm re-estimated): what a second network or a soup would buy, per forward pass.

    Validation images only; every checkpoint must come from this pack's split.
    """
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
    arrays, info = read_pack(pack)
    u8_tr, u8_val = (torch.from_numpy(arrays[k][0]).to(dev) for k in ("train", "val"))
    _, y7, ym = arrays["val"]
    nets, probs = [], []
    for path in checkpoints:
        summary = torch.load(path, map_location="cpu", weights_only=False)["summary"]
        if summary["pack"].get("split_sha256") != info.get("split_sha256"):
            raise SystemExit(f"{path} was fine-tuned on another split than {pack}: its validation images are not unseen")
        net = im.load_full(path, int(info["cut"])).to(dev).to(memory_format=torch.channels_last)
        nets.append(net)
        probs.append(torch.softmax(torch.from_numpy(turn_logits(net, u8_val, turns)).double(), -1).numpy())
        log(f"  {path}: {turns}-turn validation logits")
    names = [Path(p).parent.name or str(p) for p in checkpoints]
    rows = []

    def row(label: str, members: int, t: int, p7: np.ndarray) -> None:
        s, mets = score(p7, y7, ym)
        rows.append({"model": label, "passes": members * t, "turns": t, "score": s, **mets})

    views = sorted({1, min(2, turns), turns})
    for name, p in zip(names, probs):
        for t in views:
            row(name, 1, t, p[:, :t].mean(1))
    if len(nets) > 1:
        for t in views:
            row(" + ".join(names), len(nets), t, np.concatenate([p[:, :t] for p in probs], 1).mean(1))
        soup = copy.deepcopy(nets[0])
        states = [n.state_dict() for n in nets]
        soup.load_state_dict({k: sum(s[k].float() for s in states) / len(states) if v.is_floating_point() else v
                              for k, v in states[0].items()})
        recalibrate_bn(soup, u8_tr)
        p = torch.softmax(torch.from_numpy(turn_logits(soup, u8_val, turns)).double(), -1).numpy()
        for t in views:
            row("weight average of " + " + ".join(names), 1, t, p[:, :t].mean(1))
    return rows
