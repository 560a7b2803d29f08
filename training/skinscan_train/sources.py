"""The training sources of issue 20: pins, label mappings, the split rule, and reading them back.

The fetched sources (MILK10k, a Fitzpatrick17k subset, an SD-198 subset) are assembled by
``training/sources.py`` into ``$SKINSCAN_CACHE/data``; the shared ones live in ``../shared/data``.
Every source maps its labels to HAM10000's seven diagnoses where one fits (``dx`` blank where none
does: such photos count for the binary label and the gate, never for the 7-class heads).
"""
from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from .data import CLASSES
from .photos import Photo

# Pinned commits (../shared/notes/sources.md). mattgroh/fitzpatrick17k only labels the AJL
# subset's test images (by md5); its own images are not used.
PINS = {
    "milk10k": {"repos": {"pbanavara/milk10k": "f3a050c95e384611c28727bc85090254bd439c63"},
                "licence": "CC BY-NC 4.0", "cite": "MILK10k (ISIC 2025 challenge training set)"},
    "fitzpatrick17k": {"repos": {"UCLA-AJL-Team9/AJL-Team9": "534ce0834fb7516b39a9e7eaadf083080c30a383",
                                 "mattgroh/fitzpatrick17k": "fac223ae67788c7cd48c9384b673919b84efcce3"},
                       "licence": "CC BY-NC-SA 3.0", "cite": "Fitzpatrick17k (Groh et al. 2021), AJL subset"},
    "sd198": {"repos": {"codecodecode333/skin-disease-search-SD-198-": "4a301ef38501edb679dff6ad1380664a9f67032d"},
              "licence": "none stated (research use)", "cite": "SD-198 (Sun et al. 2016), a subset"},
}
SOURCES = list(PINS)
DUP_BITS = 6        # perceptual hashes this close (of 64 bits) are candidates for one photo ...
THUMB = 16          # ... confirmed when their THUMB x THUMB grey thumbnails correlate at least
THUMB_CORR = 0.97   # this much. Looked at on MILK10k against the shared photos: every pair from
THUMB_CORR_SHARED = 0.93  # 0.97 was a copy (often colour-corrected); 0.93-0.97 mixed copies and
                    # different spots: against the shared data (test photos among them) the looser cut
TEST_FRAC = 0.2     # share of each source's groups held out as its untouched test split

# MILK10k's ISIC 2025 classes. SCCKA joins akiec (the keratinocyte-cancer class, as PAD's SCC);
# "Indeterminate" (diagnosis_1) is AKIEC, malignant as everywhere in this project.
MILK_DX = {"AKIEC": "akiec", "BCC": "bcc", "BKL": "bkl", "DF": "df", "MEL": "mel", "NV": "nv",
           "SCCKA": "akiec", "VASC": "vasc", "BEN_OTH": "", "MAL_OTH": "", "INF": ""}
# Fitzpatrick17k's labels in the AJL subset: (dx, neoplastic). Malignancy is its own
# three_partition_label (actinic keratosis counts as malignant there, as here).
FITZ_DX = {
    "actinic-keratosis": "akiec", "basal-cell-carcinoma": "bcc", "basal-cell-carcinoma-morpheiform": "bcc",
    "dermatofibroma": "df", "epidermal-nevus": "", "kaposi-sarcoma": "", "malignant-melanoma": "mel",
    "melanoma": "mel", "superficial-spreading-melanoma-ssm": "mel", "mycosis-fungoides": "",
    "prurigo-nodularis": "", "pyogenic-granuloma": "vasc", "seborrheic-keratosis": "bkl",
    "squamous-cell-carcinoma": "akiec",
}
# SD-198's neoplasm folders: (dx, malignant). Every other folder is an inflammatory or infectious
# condition: skin, not a lesion, no malignancy label. A cutaneous horn can sit on an SCC: its
# malignancy is unknown, so it is a neoplasm without a binary label.
SD_NEOPLASM = {
    "Actinic_Keratosis": ("akiec", 1), "Basal_Cell_Carcinoma": ("bcc", 1), "Malignant_Melanoma": ("mel", 1),
    "Lentigo_Maligna_Melanoma": ("mel", 1), "Nevus_Spilus": ("nv", 0), "Angioma": ("vasc", 0),
    "Dermatofibroma": ("df", 0), "Pyogenic_Granuloma": ("vasc", 0), "Keloid": ("", 0), "Cutaneous_Horn": ("", -1),
}


def split_of(group: str) -> str:
    """``test`` for TEST_FRAC of the groups, fixed by a hash of the group alone."""
    return "test" if hashlib.sha256(f"skinscan-split:{group}".encode()).digest()[0] < TEST_FRAC * 256 else "train"


def _csv(text: str) -> list[dict]:
    return list(csv.DictReader(text.splitlines()))


def _row(source, repo, path, image, malignant, dx, photo_type, group, condition, neoplastic,
         age="", sex="", site="", skin_type="", skin_tone="") -> dict:
    return {"source": source, "repo": repo, "path": path, "image": image, "malignant": "" if malignant < 0 else str(malignant),
            "dx": dx, "photo_type": photo_type, "group": group, "condition": condition,
            "neoplastic": str(int(neoplastic)), "age": age, "sex": sex, "site": site,
            "skin_type": skin_type, "skin_tone": skin_tone}


def label_milk(repos: dict) -> list[dict]:
    slug = "pbanavara/milk10k"
    r = repos[slug]
    tone = {m["isic_id"]: m["skin_tone_class"] for m in _csv(r.text("data/MILK10k_Training_Metadata.csv"))}
    out = []
    for m in _csv(r.text("data/milk10k_train.csv")):
        kind = "dermoscopic" if m["image_type"] == "dermoscopic" else "clinical"
        age = m["age_approx"].split(".")[0] if m["age_approx"] else ""
        out.append(_row("milk10k", slug, f"data/images_train/{m['filename']}", m["isic_id"],
                        int(m["diagnosis_1"] in ("Malignant", "Indeterminate")), MILK_DX[m["isicdx_ISIC2025"]],
                        kind, m["lesion_id"], m["isicdx_ISIC2025"], m["isicdx_ISIC2025"] != "INF",
                        age=age, sex=m["sex"], site=m["anatom_site_general"], skin_tone=tone.get(m["isic_id"], "")))
    return out


def label_fitzpatrick(repos: dict) -> list[dict]:
    slug = "UCLA-AJL-Team9/AJL-Team9"
    r = repos[slug]
    full = {m["md5hash"]: m for m in _csv(repos["mattgroh/fitzpatrick17k"].text("fitzpatrick17k.csv"))}
    out = []
    train = {m["md5hash"]: m for m in _csv(r.text("data/train.csv"))}
    for path in r.ls("data/train/train") + r.ls("data/test/test"):
        md5 = Path(path).stem
        m = train.get(md5) or full.get(md5)
        if m is None:
            continue
        label = m["label"].replace(" ", "-")
        part = m["three_partition_label"]
        neo = part in ("benign", "malignant")
        skin = m["fitzpatrick_scale"] if m["fitzpatrick_scale"] in "123456" and m["fitzpatrick_scale"] else ""
        out.append(_row("fitzpatrick17k", slug, path, md5, int(part == "malignant") if neo else -1,
                        FITZ_DX.get(label, "") if neo else "", "clinical", md5, label, neo, skin_type=skin))
    return out


def label_sd198(repos: dict) -> list[dict]:
    slug = "codecodecode333/skin-disease-search-SD-198-"
    out = []
    for path in repos[slug].ls("raw_images"):
        cls = path.split("/")[1]
        image = "sd_" + hashlib.sha256(path.encode()).hexdigest()[:16]
        dx, mal = SD_NEOPLASM.get(cls, ("", -1))
        out.append(_row("sd198", slug, path, image, mal, dx, "clinical", image, cls, cls in SD_NEOPLASM))
    return out


# ------------------------------------------------------------------ reading back
def _num(v):
    try:
        return float(v) if v not in ("", None) else None
    except ValueError:
        return None


def read_source(root: Path, name: str) -> list[Photo]:
    """An assembled source (or ``derm7pt``, which shares the layout) as Photos. ``malignant`` is
    -1 where the photo has no binary label (a rash, a cutaneous horn: blank in labels.csv); ``dx`` may be outside
    CLASSES ('' when none fits)."""
    base = root / name
    out = []
    with open(base / "labels.csv", newline="") as f:
        for r in csv.DictReader(f):
            image = r["image"]
            p = base / "images" / (image if image.lower().endswith((".jpg", ".png")) else f"{image}.jpg")
            ph = Photo(image=image, path=p, dx=r.get("dx", ""), malignant=int(r["malignant"]) if r["malignant"] != "" else -1, age=_num(r.get("age")),
                       sex=r.get("sex") or None, site=r.get("site") or None,
                       group=r.get("group") or r.get("case_num") or r.get("lesion_id") or image, source=name,
                       kind=r.get("photo_type") or "clinical", split=r.get("split", ""))
            ph.condition = r.get("condition", r.get("dx", ""))
            ph.neoplastic = r.get("neoplastic", "1") == "1"
            ph.skin_type = r.get("skin_type", "") or r.get("fitspatrick", "")
            ph.skin_tone = r.get("skin_tone", "")
            out.append(ph)
    return out


def in_classes(items: list[Photo]) -> list[Photo]:
    return [p for p in items if p.dx in CLASSES and p.malignant in (0, 1)]
