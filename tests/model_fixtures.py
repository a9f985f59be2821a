"""Tiny labelled corpora for the model, registry, labelling and train-flow tests.

Sentences are built from templates so that every frame has a few dozen clear
examples spread over several batches; nothing here reads the real labels/.
"""

from __future__ import annotations

import csv
import itertools
import json
import random
from pathlib import Path

FRAMES_TOML = '''
[[frame]]
name = "multipolarity"
title = "Multipolarity"
description = "The world order is or should become multipolar."
keywords = ["multipolar", "multipolarity", "new world order", "global governance"]

[[frame]]
name = "anti_sanctions"
title = "Anti-sanctions"
description = "Sanctions are illegal, counterproductive or should be resisted."
keywords = ["illegal sanctions", "unilateral sanctions", "counterproductive sanctions"]

[[frame]]
name = "peace_talks"
title = "Peace talks"
description = "A conflict should be settled by negotiation."
keywords = ["peace talks", "negotiations", "political settlement", "ceasefire"]

[[frame]]
name = "anti_hegemony"
title = "Anti-hegemony"
description = "A dominant power seeks domination and must be opposed."
keywords = ["hegemony", "hegemonism", "bullying", "cold war mentality"]
'''

SPEAKERS = ["Lavrov", "Wang Yi", "Putin", "Xi Jinping", "the minister", "the spokesperson", "Maria Zakharova",
            "the ambassador"]
WHEN = ["on Monday", "on 3 March 2022", "last week", "on Tuesday", "in April", "on 14 June 2023"]

TEMPLATES = {
    "multipolarity": [
        "{who} said {when} that the world is moving towards a multipolar order.",
        "{who} called for a fairer and more democratic world order {when}.",
        "A new world order is emerging, {who} told reporters {when}.",
        "{who} stressed {when} that global governance must be reformed to reflect a multipolar reality.",
    ],
    "anti_sanctions": [
        "{who} said {when} that the illegal unilateral sanctions will fail.",
        "{who} condemned the sanctions as illegal and counterproductive {when}.",
        "The sanctions imposed by Washington are illegitimate, {who} said {when}.",
        "{who} vowed {when} to keep trading despite the illegal sanctions pressure.",
    ],
    "peace_talks": [
        "{who} said {when} that the conflict can only be settled through peace talks.",
        "{who} reaffirmed support for negotiations between Russia and Ukraine {when}.",
        "A political settlement of the crisis is the only way out, {who} said {when}.",
        "{who} urged both sides {when} to agree a ceasefire and return to the negotiating table.",
    ],
    "anti_hegemony": [
        "{who} said {when} that Washington seeks hegemony and must be opposed.",
        "{who} denounced the unilateral bullying of the West {when}.",
        "The United States is clinging to a Cold War mentality, {who} said {when}.",
        "{who} warned {when} against NATO's drive for global domination and hegemonism.",
    ],
    "": [
        "{who} arrived in Beijing {when} for a two-day visit.",
        "The two ministers had lunch together {when}, {who} said.",
        "{who} said {when} that trade between the countries grew by 30 percent.",
        "Western governments imposed new sanctions on Russian banks {when}.",
        "{who} met the foreign minister of Brazil {when}.",
        "The weather in Moscow was cold {when}, {who} noted.",
    ],
}


def corpus(offset: int = 0) -> list[dict]:
    """Rows of text, frames, origin, batch: each template with several speakers and dates."""
    rows = []
    for frame, templates in TEMPLATES.items():
        for t, template in enumerate(templates):
            pairs = list(itertools.product(SPEAKERS, WHEN))[offset::7][:4]
            for k, (who, when) in enumerate(pairs):
                text = template.format(who=who, when=when)
                rows.append({"text": text[0].upper() + text[1:], "frames": frame, "origin": "written",
                             "batch": f"b{(t + k) % 6}"})
    return rows


def write_csv(path: Path, rows: list[dict], columns: tuple[str, ...] = ("text", "frames", "origin", "batch")) -> Path:
    """Write rows as a labels-format CSV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def make_labels_dir(root: Path, shuffle: bool = False) -> Path:
    """A labels/ folder with frames.toml, one training file and an eval split of other sentences."""
    labels = root / "labels"
    labels.mkdir(parents=True, exist_ok=True)
    (labels / "frames.toml").write_text(FRAMES_TOML, encoding="utf-8")
    train = corpus(0)
    if shuffle:
        frames = [r["frames"] for r in train]
        order = list(range(len(frames)))
        random.Random(7).shuffle(order)
        train = [{**r, "frames": frames[i]} for r, i in zip(train, order)]
    write_csv(labels / "train.csv", train)
    train_texts = {r["text"] for r in train}
    held = [r for r in corpus(3) if r["text"] not in train_texts]
    write_csv(labels / "eval" / "heldout.csv", held)
    return labels


def without_scorer(models: Path, version: str) -> None:
    """Make a saved version look saved before scorer.npz existed: scoring it unpickles model.joblib."""
    (models / version / "scorer.npz").unlink()
    path = models / version / "metadata.json"
    meta = json.loads(path.read_text())
    del meta["scorer_sha256"]
    path.write_text(json.dumps(meta))
