"""A benchmark content tree derived from the real corpus records (../shared/corpus).

Every generated record is a real record's front matter and body (cycled over the records that
import cleanly) with what must differ made unique: the id, every URL field (a path suffix, so
URLs and lookup hashes are unique), the publication time (spread evenly over three years with
jitter) and a title that mixes the template's words with another record's, so the text index
sees the corpus vocabulary in new combinations. Each record keeps its real field mix (images,
provider, quality, heat, curated ``related`` lists, unpublished items) and gets one or two more
topics from the corpus' topic names, so records carry several topics each. The taxonomy and
organisation files of the corpus are copied once.

Usage: python bench/corpus_tree.py N OUT_DIR [--seed S] [--processes P]
"""
from __future__ import annotations

import argparse
import multiprocessing
import random
import shutil
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from feeds.errors import RecordError  # noqa: E402
from feeds.records import parse_article, split_front_matter  # noqa: E402

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
SITES = ["everyday-cc-ai", "everyday-cc-azure", "everyday-cc-powerapps", "everyday-cc-powerbi"]
URL_KEYS = ("originalUrl", "webUrl", "ampWebUrl", "cdnAmpWebUrl")
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
START = datetime(2021, 1, 1, tzinfo=timezone.utc)
SPAN = timedelta(days=3 * 365)


def corpus_dir() -> Path:
    """The shared corpus ($TOPICFEED_SHARED/corpus, else ../shared/corpus); exits when absent."""
    import os

    shared = os.environ.get("TOPICFEED_SHARED")
    path = Path(shared) / "corpus" if shared else CORPUS
    if not path.is_dir():
        sys.exit(f"corpus not found at {path} (set TOPICFEED_SHARED)")
    return path


def templates(corpus: Path) -> list[tuple[dict, str]]:
    """(front matter, body) of every corpus record that imports cleanly, in file-name order."""
    found = []
    for site in SITES:
        for sub in ("_archive/_news", "_news"):
            for path in sorted((corpus / site / sub).glob("*.md")):
                data = path.read_bytes()
                try:
                    parse_article(data, str(path), path.stem)
                except RecordError:
                    continue
                front, body = split_front_matter(data.decode(), str(path))
                found.append((yaml.load(front, Loader=_LOADER), body))
    return found


def _unique_url(url: str, n: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + f"-v{n}", parts.query, ""))


CHUNK = 10_000  # records per deterministic chunk: each chunk has its own seeded generator


def _chunk_rng(seed: int, chunk: int) -> random.Random:
    """The generator of one chunk, seeded from (seed, chunk) alone, so a chunk's records are the
    same whichever process writes it and in whatever order."""
    return random.Random(f"{seed}:{chunk}")


def _write_chunk(job: tuple[Path, int, int, int, list[tuple[dict, str]], list[str]]) -> int:
    """Write records ``[chunk*CHUNK, min(articles, (chunk+1)*CHUNK))``; returns how many."""
    news, articles, seed, chunk, pool, topic_names = job
    titles = [str(front.get("title") or "").split() for front, _ in pool]
    rng = _chunk_rng(seed, chunk)
    stop = min(articles, (chunk + 1) * CHUNK)
    for n in range(chunk * CHUNK, stop):
        front, body = pool[n % len(pool)]
        rec = dict(front)
        for key in URL_KEYS:
            if isinstance(rec.get(key), str):
                rec[key] = _unique_url(rec[key], n)
        words = titles[n % len(titles)]
        other = titles[rng.randrange(len(titles))]
        half = max(1, len(words) // 2)
        rec["title"] = " ".join(words[:half] + other[len(other) // 2:]) or f"Article {n}"
        when = START + SPAN * (n / max(articles, 1)) + timedelta(minutes=rng.randrange(-720, 720))
        rec["publishedDateTime"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        topics = [t for t in rec.get("topics") or [] if isinstance(t, str)]
        for extra in rng.sample(topic_names, min(len(topic_names), rng.randint(1, 2))):
            if extra not in topics:
                topics.append(extra)
        rec["topics"] = topics
        text = yaml.dump(rec, Dumper=_DUMPER, allow_unicode=True, sort_keys=False, width=10_000)
        (news / f"{when:%Y-%m-%d}-bench-{n:07d}.md").write_text(f"---\n{text}---\n{body}")
    return stop - chunk * CHUNK


def write_tree(out: Path, articles: int, seed: int = 11, processes: int = 1) -> Path:
    """Write ``articles`` records under ``out`` (``_news/`` plus the corpus' ``_data/``).

    Records are generated in chunks of ``CHUNK``, each from its own generator seeded by
    (seed, chunk), so the tree is byte-identical for any ``processes`` (>= 1) count; with more
    than one, chunks are written by a pool of forked worker processes (1M records: ~4 GB).
    """
    corpus = corpus_dir()
    pool = templates(corpus)
    topic_names = sorted({t for front, _ in pool for t in front.get("topics") or [] if isinstance(t, str)})
    news = out / "_news"
    news.mkdir(parents=True, exist_ok=True)
    data = out / "_data"
    if not data.exists():
        shutil.copytree(corpus / "everyday-cc-ai" / "_data", data, ignore=shutil.ignore_patterns("theguardian.com"))
    jobs = [(news, articles, seed, chunk, pool, topic_names) for chunk in range(-(-articles // CHUNK))]
    if processes <= 1:
        for job in jobs:
            _write_chunk(job)
    else:
        # fork: workers inherit the parsed templates instead of re-reading the corpus
        with multiprocessing.get_context("fork").Pool(processes) as workers:
            for _ in workers.imap_unordered(_write_chunk, jobs):
                pass
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("articles", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--processes", type=int, default=1, help="worker processes (same output for any count)")
    args = parser.parse_args()
    if args.articles < 0 or args.processes < 1:
        sys.exit("articles must be >= 0 and --processes >= 1")
    write_tree(args.out, args.articles, args.seed, args.processes)
    print(f"wrote {args.articles} corpus-derived records to {args.out}")


if __name__ == "__main__":
    main()
