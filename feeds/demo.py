"""Synthetic content trees in the everyday-cc layout: built-in sample content and benchmark data.

Deterministic per seed. The mix mirrors the real records: several topics and providers
(InfoWorld among them), unpublished items, negative heat, videos without ``webUrl``,
curated ``related`` lists, offsets other than ``Z``.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

TOPICS = [
    ("ai", "AI", None, ["artificial intelligence", "ai"]),
    ("machine-learning", "Machine Learning", "AI", ["machine learning", "ml"]),
    ("computer-vision", "Computer Vision", "AI", ["vision", "image recognition"]),
    ("natural-language-processing", "Natural Language Processing", "AI", ["nlp", "language"]),
    ("ai-ethics", "AI Ethics", "AI", ["ethics", "bias"]),
    ("ai-hardware", "AI Hardware", "AI", ["chips", "gpu"]),
    ("robotics", "Robotics", "AI", ["robots"]),
    ("cloud", "Cloud", None, ["cloud", "azure", "aws"]),
]
PROVIDERS = [
    ("infoworld.com", "InfoWorld"), ("techcrunch.com", "TechCrunch"), ("venturebeat.com", "VentureBeat"),
    ("theverge.com", "The Verge"), ("wired.com", "WIRED"), ("zdnet.com", "ZDNet"),
    ("lelezard.com", "Le Lézard"), ("example-research.org", "Example Research"),
]
SUBJECTS = ["Startup", "Researchers", "Chip maker", "Cloud provider", "Lab", "University team", "Regulator",
            "Open source project", "Carmaker", "Hospital network", "Bank", "Retailer"]
VERBS = ["unveils", "trains", "open-sources", "benchmarks", "questions", "deploys", "acquires", "funds",
         "audits", "scales", "shrinks", "rethinks"]
OBJECTS = ["language model", "vision system", "inference chip", "robot arm", "fraud detector",
           "recommendation engine", "speech recogniser", "translation tool", "code assistant",
           "medical imaging model", "self-driving stack", "data pipeline", "vector database",
           "edge accelerator", "ethics board", "training cluster"]
DETAILS = ["for hospitals", "at scale", "on a budget", "for developers", "in Europe", "with fewer GPUs",
           "after criticism", "for small businesses", "in the browser", "under new rules", "for farmers",
           "with synthetic data"]


def _title(rng: random.Random) -> str:
    return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(DETAILS)}"


def _slug(title: str) -> str:
    return "-".join("".join(c for c in w.lower() if c.isalnum()) for w in title.split())


def write_demo_content(out: Path, articles: int, seed: int = 1) -> int:
    """Write ``articles`` records plus topics and organisations under ``out``; returns the count."""
    rng = random.Random(seed)
    (out / "_news").mkdir(parents=True, exist_ok=True)
    (out / "_data" / "topics").mkdir(parents=True, exist_ok=True)
    (out / "_data" / "organizations").mkdir(parents=True, exist_ok=True)
    for position, (slug, name, parent, keywords) in enumerate(TOPICS):
        data = {"taxonomy": "topic", "_id": slug, "name": name, "keywords": keywords,
                "images": [f"https://images.example.org/topics/{slug}.jpg"]}
        if parent:
            data["parent"] = parent
        (out / "_data" / "topics" / f"{position:02d}-{slug}.yaml").write_text(
            yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    for domain, name in PROVIDERS:
        data = {"taxonomy": "organization", "_id": domain, "name": name, "domain": domain,
                "description": f"{name}, a provider of technology news."}
        (out / "_data" / "organizations" / f"{domain}.md").write_text(
            "---\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True) + "---\n", encoding="utf-8")
    start = datetime(2020, 1, 1, tzinfo=timezone.utc)
    written: list[dict] = []
    for n in range(articles):
        when = start + timedelta(minutes=n * 37 + rng.randrange(30))
        if rng.random() < 0.2:
            when = when.astimezone(timezone(timedelta(hours=-7)))
        title = _title(rng)
        domain, provider_name = PROVIDERS[rng.randrange(len(PROVIDERS))]
        slug = f"{_slug(title)}-{n}"
        article_id = f"{when:%Y-%m-%d}-{slug}"
        path_part = f"article/{3600000 + n}/{slug}.html" if domain == "infoworld.com" else f"{when:%Y/%m}/{slug}/"
        url = f"https://www.{domain}/{path_part}"
        topic_names = [TOPICS[0][1]] + [t[1] for t in rng.sample(TOPICS[1:], rng.randint(0, 2))]
        is_video = rng.random() < 0.03
        quality = rng.randint(0, 150)
        record: dict = {
            "category": "news",
            "title": title,
            "excerpt": f"{title}. {rng.choice(SUBJECTS)} say the {rng.choice(OBJECTS)} "
                       f"could change how teams work {rng.choice(DETAILS)}.",
            "publishedDateTime": when.isoformat().replace("+00:00", "Z"),
            "originalUrl": url,
            "type": "video" if is_video else "article",
            "quality": quality,
            "heat": quality - rng.randint(0, 40) if rng.random() > 0.1 else -1,
            "published": rng.random() > 0.1,
            "provider": {"name": provider_name, "domain": domain},
            "topics": topic_names,
            "images": [{"url": f"https://images.example.org/{n}.jpg", "width": 1200, "height": 800, "isCached": True}],
        }
        if not is_video:
            record["webUrl"] = url
            record["ampWebUrl"] = url.rstrip("/") + ("/amp/" if url.endswith("/") else "?amp")
        if written and rng.random() < 0.3:
            picks = rng.sample(written[-50:], min(len(written[-50:]), rng.randint(1, 3)))
            record["related"] = [
                {"title": p["title"], "excerpt": p["excerpt"], "publishedDateTime": p["publishedDateTime"],
                 "webUrl": p["originalUrl"], "type": "article", "provider": p["provider"], "quality": p["quality"]}
                for p in picks
            ]
        written.append(record)
        text = "---\n" + yaml.dump(record, Dumper=_DUMPER, sort_keys=False, allow_unicode=True, width=1000) + "---\n"
        (out / "_news" / f"{article_id}.md").write_text(text, encoding="utf-8")
    return articles
