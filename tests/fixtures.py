"""Writers of tiny dataset copies in the exact on-disk formats of the real datasets.

Each writer returns the ground truth it wrote, so tests compare what a reader decodes with what
was put on disk (pixels, 0-based labels, splits) rather than with the reader's own logic.
"""

from __future__ import annotations

import os

import h5py
import numpy as np
import scipy.io
from PIL import Image

# ---- DeepFashion-Synthesis --------------------------------------------------------------------
DFS_COLOURS = ("black", "white", "red")  # words for color_ codes 1, 2, 3
DFS_SLEEVES = ("sleeveless", "short-sleeved", "long-sleeved")  # sleeve_ codes 1, 2, 3
DFS_GARMENTS = ("blouse", "t-shirt", "sweater", "dress")  # cate_new codes 1..4
DFS_PEOPLE = ("lady", "gentleman")  # gender_ 0, 1
DFS_LAYOUTS = {
    "flat": {"G2.h5": "", "language_original.mat": "", "ind.mat": ""},
    "img_anno_eval": {"G2.h5": "Img", "language_original.mat": "Anno", "ind.mat": "Eval"},
    "benchmark": {"G2.h5": "supervision_signals", "language_original.mat": "benchmark",
                  "ind.mat": "benchmark"},
}


def dfs_image(k: int, height: int, width: int) -> np.ndarray:
    """A uint8 HWC image whose rows, columns and channels all differ (catches axis swaps)."""
    y, x, c = np.meshgrid(np.arange(height), np.arange(width), np.arange(3), indexing="ij")
    return ((k * 20 + y * 29 + x * 7 + c * 50) % 256).astype(np.uint8)


def write_deepfashion_synthesis(directory: str, n: int = 12, layout: str = "flat", height: int = 8,
                                width: int = 6, test_ind=(3, 7, 11)) -> dict:
    """G2.h5 (MATLAB axis order), language_original.mat and ind.mat (v5, 1-based codes)."""
    images = np.stack([dfs_image(k, height, width) for k in range(n)])  # N H W C
    seg = np.stack([np.broadcast_to(((np.arange(height) + k) % 7)[:, None], (height, width))
                    for k in range(n)]).astype(np.uint8)  # N H W, varies along H only
    mean = np.linspace(0.1, 0.6, 3 * height * width, dtype=np.float32).reshape(3, height, width)
    nchw = np.transpose(images.astype(np.float32) / 255.0, (0, 3, 1, 2))
    ih = (nchw - mean[None]).astype(np.float32)

    colour = np.array([1 + k % 3 for k in range(n)])
    sleeve = np.array([1 + k % 3 for k in range(n)])[::-1].copy()
    cate = np.array([1 + k % 4 for k in range(n)])
    gender = np.array([k % 2 for k in range(n)])
    sentences = [f"The {DFS_PEOPLE[gender[k]]} was wearing a {DFS_COLOURS[colour[k] - 1]} "
                 f"{DFS_SLEEVES[sleeve[k] - 1]} {DFS_GARMENTS[cate[k] - 1]}." for k in range(n)]

    dirs = DFS_LAYOUTS[layout]
    path = {name: os.path.join(directory, sub, name) for name, sub in dirs.items()}
    for p in path.values():
        os.makedirs(os.path.dirname(p), exist_ok=True)
    with h5py.File(path["G2.h5"], "w") as f:  # MATLAB writes column-major: last two axes swapped
        f["ih"] = np.swapaxes(ih, -1, -2)
        f["ih_mean"] = np.swapaxes(mean, -1, -2)
        f["b_"] = np.swapaxes(seg[:, None].astype(np.float64), -1, -2)

    def cell(items):
        out = np.empty((len(items), 1), dtype=object)
        for i, item in enumerate(items):
            out[i, 0] = item
        return out

    col = lambda a: np.asarray(a, np.float64).reshape(-1, 1)  # noqa: E731 - MATLAB column vectors
    scipy.io.savemat(path["language_original.mat"], {
        "nameList": cell([f"img/{DFS_GARMENTS[cate[k] - 1]}/img_{k:08d}.jpg" for k in range(n)]),
        "engJ": cell(sentences),
        "codeJ": cell([np.arange(1, 6, dtype=np.float64) + k for k in range(n)]),
        "cate_new": col(cate), "color_": col(colour), "sleeve_": col(sleeve), "gender_": col(gender),
    }, format="5")
    test0 = np.array(sorted(test_ind))
    train0 = np.setdiff1d(np.arange(n), test0)
    scipy.io.savemat(path["ind.mat"], {"train_ind": col(train0 + 1), "test_ind": col(test0 + 1)},
                     format="5")
    labels = np.stack([colour - 1, sleeve - 1, cate - 1, gender], axis=1).astype(np.int32)
    return {"images": images, "segmentation": seg, "labels": labels, "train": train0,
            "test": test0, "paths": path, "sentences": sentences}


# ---- Shopping100k -----------------------------------------------------------------------------
SHOPPING_ATTR_NUM = (16, 17, 19, 14, 10, 15, 2, 11, 16, 7, 9, 15)


def _write_image(path: str, seed: int, size=(10, 12)) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)


def write_shopping100k(directory: str, n_train: int = 5, n_test: int = 3,
                       image_root: str = "Images") -> dict:
    """imgs_/labels_{train,test}.txt, attr_num.txt and small images under `image_root`."""
    rng = np.random.default_rng(1)
    with open(os.path.join(directory, "attr_num.txt"), "w") as f:
        f.write(" ".join(map(str, SHOPPING_ATTR_NUM)) + "\n")
    truth = {}
    for split, n in (("train", n_train), ("test", n_test)):
        labels = np.stack([rng.integers(0, k, n) for k in SHOPPING_ATTR_NUM], axis=1)
        labels[0, 1] = -1  # collar missing on the first image
        labels[n - 1, 10] = -1  # sleeve length missing on the last
        rels = []
        with open(os.path.join(directory, f"imgs_{split}.txt"), "w") as fi, \
                open(os.path.join(directory, f"labels_{split}.txt"), "w") as fl:
            for i in range(n):
                ext = "jpg" if i % 2 else "png"
                rel = f"{'Female' if labels[i, 6] else 'Male'}/{split}_{i:03d}.{ext}"
                _write_image(os.path.join(directory, image_root, rel), seed=i)
                rels.append(rel)
                fi.write(rel + "\n")
                blocks = []
                for k, v in zip(SHOPPING_ATTR_NUM, labels[i]):
                    block = np.zeros(k, int)
                    if v >= 0:
                        block[v] = 1
                    blocks.append(block)
                fl.write(" ".join(map(str, np.concatenate(blocks))) + "\n")
        truth[split] = {"labels": labels.astype(np.int32), "paths": rels}
    return truth


# ---- DeepFashion Category-and-Attribute (Anno_fine) -------------------------------------------
ANNO_FINE_ATTRIBUTES = (
    ("floral", 1), ("graphic", 1), ("striped", 1), ("embroidered", 1), ("pleated", 1),
    ("solid", 1), ("lattice", 1), ("long_sleeve", 2), ("short_sleeve", 2), ("sleeveless", 2),
    ("maxi_length", 3), ("mini_length", 3), ("no_dress", 3), ("crew_neckline", 4),
    ("v_neckline", 4), ("square_neckline", 4), ("no_neckline", 4), ("denim", 5), ("chiffon", 5),
    ("cotton", 5), ("leather", 5), ("faux", 5), ("knit", 5), ("tight", 6), ("loose", 6),
    ("conventional", 6))
ANNO_FINE_CATEGORIES = (("Anorak", 1), ("Blazer", 1), ("Button-Down", 1), ("Tank Top", 1),
                        ("Jeans", 2), ("Dress", 3))
ANNO_FINE_GROUP_SIZES = (7, 3, 3, 4, 6, 3)


def anno_fine_truth() -> dict:
    """Fixed per-split group labels (0-based, -1 missing) and 0-based categories."""
    rng = np.random.default_rng(2)
    out = {}
    for split, n in (("train", 4), ("val", 2), ("test", 2)):
        groups = np.stack([rng.integers(0, k, n) for k in ANNO_FINE_GROUP_SIZES], axis=1)
        groups[0, 2] = -1  # length unlabelled on the first image of each split
        out[split] = {"groups": groups.astype(np.int32),
                      "category": rng.integers(0, len(ANNO_FINE_CATEGORIES), n).astype(np.int32)}
    return out


def write_deepfashion_attributes(directory: str, encoding: str = "binary",
                                 anno_subdir: str = "") -> dict:
    """Anno_fine list files, {split}.txt/_attr.txt/_cate.txt and tiny images under img/."""
    anno = os.path.join(directory, anno_subdir)
    os.makedirs(anno, exist_ok=True)
    with open(os.path.join(anno, "list_attr_cloth.txt"), "w") as f:
        f.write(f"{len(ANNO_FINE_ATTRIBUTES)}\nattribute_name  attribute_type\n")
        f.writelines(f"{name:<30}{t}\n" for name, t in ANNO_FINE_ATTRIBUTES)
    with open(os.path.join(anno, "list_category_cloth.txt"), "w") as f:
        f.write(f"{len(ANNO_FINE_CATEGORIES)}\ncategory_name  category_type\n")
        f.writelines(f"{name:<30}{t}\n" for name, t in ANNO_FINE_CATEGORIES)
    truth = anno_fine_truth()
    starts = np.concatenate([[0], np.cumsum(ANNO_FINE_GROUP_SIZES)])
    for split, t in truth.items():
        rels = [f"img/Item_{split}_{i}/img_{i:08d}.jpg" for i in range(len(t["groups"]))]
        for i, rel in enumerate(rels):
            _write_image(os.path.join(directory, rel), seed=i, size=(6, 5))
        with open(os.path.join(anno, f"{split}.txt"), "w") as f:
            f.writelines(r + "\n" for r in rels)
        with open(os.path.join(anno, f"{split}_cate.txt"), "w") as f:
            f.writelines(f"{c + 1}\n" for c in t["category"])
        with open(os.path.join(anno, f"{split}_attr.txt"), "w") as f:
            for row in t["groups"]:
                if encoding == "group":
                    f.write(" ".join(map(str, row)) + "\n")
                else:
                    bits = np.zeros(len(ANNO_FINE_ATTRIBUTES), int)
                    for g, v in enumerate(row):
                        if v >= 0:
                            bits[starts[g] + v] = 1
                    f.write(" ".join(map(str, bits)) + "\n")
        t["paths"] = rels
    return truth
