from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from genetic_instruct.dedup_cli import dedup as dedup_command
from genetic_instruct.quality import dedup as D
from genetic_instruct.quality.dedup import (
    NearDuplicateIndex,
    candidate_probability,
    components,
    dedup_rows,
    dedup_texts,
    lsh_params,
)
from genetic_instruct.quality.minhash import MinHasher, jaccard, shingles

ROOT = Path(__file__).resolve().parents[1]
WORDS = [f"w{i}" for i in range(20000)]


def text(rng: random.Random, n: int = 60) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def exact_j(a: str, b: str) -> float:
    return jaccard(shingles(a), shingles(b))


def edited(rng: random.Random, t: str, k: int, at: range | None = None) -> str:
    """k word substitutions, each at a different position (in ``at`` when given)."""
    words = t.split()
    for p in rng.sample(list(at or range(len(words))), k):
        words[p] = rng.choice(WORDS) + "z"
    return " ".join(words)


def rows_of(texts, **extra):
    return [{"id": f"r{i}", "instruction": t, **{k: v[i] for k, v in extra.items()}}
            for i, t in enumerate(texts)]


def kept_ids(kept):
    return [r["id"] for r in kept]


# -- parameters ------------------------------------------------------------------------------
def test_lsh_params_put_the_s_curve_below_the_threshold():
    assert lsh_params(0.7, 64) == (16, 4)
    for t in (0.5, 0.7, 0.8, 0.9):
        b, r = lsh_params(t, 64)
        assert b * r <= 64
        assert candidate_probability(t, b, r) >= D.RECALL_AT_THRESHOLD
        # one more row per band would miss the target: these are the fewest candidates
        if r < 64:
            assert candidate_probability(t, 64 // (r + 1), r + 1) < D.RECALL_AT_THRESHOLD
    b, r = lsh_params(0.7, 64)
    assert candidate_probability(0.3, b, r) < 0.15
    with pytest.raises(ValueError):
        lsh_params(0.0, 64)


# -- exact and near --------------------------------------------------------------------------
def test_exact_duplicates_ignore_case_whitespace_and_punctuation():
    texts = ["Sort the list, then return it.", "sort  the LIST then\nreturn it",
             "Sort the list; then return it!!", "Sort the list then return them",
             "", "   ", "?!"]
    kept, report = dedup_rows(rows_of(texts))
    assert kept_ids(kept) == ["r0", "r3", "r4"]
    assert report["counts"] == {"rows": 7, "exact": 4, "near": 0, "kept": 3, "clusters": 2}
    assert report["clusters"][0] == {"kept": "r0", "size": 3, "members": ["r0", "r1", "r2"]}
    assert set(report["seconds"]) >= {"sketch", "exact", "lsh", "verify", "cluster",
                                      "select", "total"}


def test_near_duplicates_merged_and_distinct_texts_kept():
    rng = random.Random(1)
    bases = [text(rng) for _ in range(40)]
    copies = [edited(rng, b, 2) for b in bases[:20]]
    assert all(exact_j(b, c) >= 0.75 for b, c in zip(bases, copies))
    assert max(exact_j(a, b) for i, a in enumerate(bases) for b in bases[i + 1:]) < 0.1
    kept, report = dedup_rows(rows_of(bases + copies))
    assert kept_ids(kept) == [f"r{i}" for i in range(40)]
    assert report["counts"]["near"] == 20 and report["counts"]["exact"] == 0
    for c in report["clusters"]:
        assert c["size"] == 2 and int(c["members"][1][1:]) == int(c["kept"][1:]) + 40


@pytest.mark.parametrize("verify", ["exact", "estimate"])
def test_threshold_merges_pairs_at_0_9_and_keeps_pairs_at_0_4(verify):
    rng = random.Random(2)
    high, low = [], []
    while len(high) < 30 or len(low) < 30:
        a = text(rng)
        b = edited(rng, a, rng.choice((1, 10, 11, 12, 13)))
        j = exact_j(a, b)
        if 0.87 <= j <= 0.93 and len(high) < 30:
            high.append((a, b))
        elif 0.37 <= j <= 0.43 and len(low) < 30:
            low.append((a, b))
    for pairs, merged in ((high, True), (low, False)):
        texts = [t for p in pairs for t in p]
        res = dedup_texts(texts, 0.7, verify=verify)
        same = res.label[0::2] == res.label[1::2]
        assert same.all() if merged else not same.any()


def test_the_cut_is_the_exact_jaccard_around_the_threshold():
    """With verify="exact" a pair's fate follows its true Jaccard, not a noisy estimate."""
    rng = random.Random(3)
    texts, truth = [], []
    while len(truth) < 120:
        a = text(rng, 50)
        b = edited(rng, a, rng.randint(1, 6))
        j = exact_j(a, b)
        if 0.8 <= j or j <= 0.62:  # LSH recall is ~1 at 0.8; 0.62 stays clear of the cut
            texts += [a, b]
            truth.append(j >= 0.7)
    res = dedup_texts(texts, 0.7)
    same = res.label[0::2] == res.label[1::2]
    assert same.tolist() == truth


def test_clusters_are_transitive():
    rng = random.Random(4)
    a = text(rng, 60)
    b = edited(rng, a, 3, range(20))    # edits at the start
    c = edited(rng, b, 3, range(40, 60))   # further edits at the end
    assert exact_j(a, b) >= 0.7 and exact_j(b, c) >= 0.7 and exact_j(a, c) < 0.7
    others = [text(rng) for _ in range(5)]
    kept, report = dedup_rows(rows_of([c, others[0], a, others[1], b] + others[2:]))
    assert kept_ids(kept) == ["r0", "r1", "r3", "r5", "r6", "r7"]
    assert report["clusters"] == [{"kept": "r0", "size": 3, "members": ["r0", "r2", "r4"]}]


def test_keep_score_keeps_the_best_row_of_each_cluster():
    rng = random.Random(5)
    a, b = text(rng), text(rng)
    texts = [a, edited(rng, a, 1), a.upper(), b, edited(rng, b, 1), text(rng)]
    scores = [0.1, 0.9, 0.5, None, 0.2, 0.0]
    rows = rows_of(texts, score=scores)
    kept, report = dedup_rows(rows, keep="score")
    assert kept_ids(kept) == ["r1", "r4", "r5"]  # missing scores count as lowest
    assert report["clusters"][0] == {"kept": "r1", "size": 3, "members": ["r1", "r0", "r2"]}
    # ties keep the first; a dotted path reaches into nested (or JSON-string) columns
    rows = rows_of(texts, fitness=[{"x": 1}, {"x": 1}, json.dumps({"x": 2}), {}, {}, {}])
    kept, _ = dedup_rows(rows, keep="score", score="fitness.x")
    assert kept_ids(kept) == ["r2", "r3", "r5"]
    kept, _ = dedup_rows(rows, keep="first")
    assert kept_ids(kept) == ["r0", "r3", "r5"]


def test_solution_field_and_both():
    rng = random.Random(6)
    sol = "def f(xs):\n    return sorted(set(xs), reverse=True)[:3] if xs else []\n"
    rows = [
        {"id": "a", "instruction": text(rng), "solution": sol},
        {"id": "b", "instruction": text(rng), "solution": sol.replace("    ", "\t")},
        {"id": "c", "instruction": "Compute the mean of a list of numbers", "solution": "x"},
        {"id": "d", "instruction": "compute the MEAN of a list of numbers.", "solution": "y"},
    ]
    assert kept_ids(dedup_rows(rows, field="instruction")[0]) == ["a", "b", "c"]
    assert kept_ids(dedup_rows(rows, field="solution")[0]) == ["a", "c", "d"]
    kept, report = dedup_rows(rows, field="both")
    assert kept_ids(kept) == ["a", "c"]
    assert report["field"] == "both" and report["counts"]["kept"] == 2
    with pytest.raises(ValueError, match="no 'solution'"):
        dedup_rows([{"id": "x", "instruction": "y"}], field="solution")
    with pytest.raises(ValueError, match="field"):
        dedup_rows(rows, field="tests")


def test_edge_cases():
    kept, report = dedup_rows([])
    assert kept == [] and report["counts"]["kept"] == 0
    kept, _ = dedup_rows([{"id": 1, "instruction": "one"}])
    assert kept_ids(kept) == [1]
    assert dedup_texts(["", ""]).kept.tolist() == [0]


def test_report_caps_cluster_listing():
    rng = random.Random(7)
    texts = []
    for _ in range(30):
        t = text(rng)
        texts += [t] * 5
    _, report = dedup_rows(rows_of(texts), max_clusters=10, max_members=3)
    assert report["counts"]["clusters"] == 30 and report["clusters_listed"] == 10
    assert report["clusters_truncated"] is True
    assert all(c["size"] == 5 and len(c["members"]) == 3 for c in report["clusters"])


# -- the building blocks ---------------------------------------------------------------------
def test_components_match_a_plain_union_find():
    rng = np.random.default_rng(0)
    n = 2000
    edges = rng.integers(0, n, (1500, 2))
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in edges.tolist():
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    expected = [find(i) for i in range(n)]
    # the label is the smallest member of the component
    got = components(n, edges)
    assert got.tolist() == expected


def test_candidates_and_set_jaccard_against_brute_force():
    rng = random.Random(8)
    texts = []
    for _ in range(60):
        t = text(rng, 30)
        texts += [t] + [edited(rng, t, rng.randint(1, 4)) for _ in range(rng.randint(0, 12))]
    hasher = MinHasher(num_perm=64, hash_bits=32)
    sigs = hasher.signatures(texts)
    pairs = D.candidates(sigs, 16, 4, anchors=1000)
    keys = D.band_keys_t(sigs, 16, 4)
    brute = {(i, j) for i in range(len(texts)) for j in range(i + 1, len(texts))
             if (keys[:, i] == keys[:, j]).any()}
    assert {tuple(p) for p in pairs.tolist()} == brute
    flat, bounds = D.shingle_sets(hasher, texts)
    got = D.set_jaccard(flat, bounds, pairs)
    want = [exact_j(texts[i], texts[j]) for i, j in pairs.tolist()]
    assert np.allclose(got, want, atol=1e-6)
    # a member of a big bucket pairs with the first `anchors` members only
    few = D.candidates(sigs, 16, 4, anchors=2)
    assert len(few) < len(pairs)
    assert (components(len(texts), few) == components(len(texts), pairs)).all()


# -- the incremental index -------------------------------------------------------------------
@pytest.mark.parametrize("exact", [True, False])
def test_near_duplicate_index(exact):
    rng = random.Random(9)
    bases = [text(rng) for _ in range(50)]
    index = NearDuplicateIndex(0.7, exact=exact)
    assert index.query(bases[0]) is None  # empty
    assert index.add("a0", bases[0]) is True
    assert index.add("a0", bases[1]) is False  # an id keeps its first text
    assert index.add_many([f"a{i}" for i in range(1, 50)], bases[1:]) == 49
    assert len(index) == 50 and "a7" in index
    hit = index.query(edited(rng, bases[7], 1))
    assert hit is not None and hit[0] == "a7" and 0.8 <= hit[1] < 1.0
    assert index.query(bases[3].upper() + "!") == ("a3", 1.0)
    assert index.query(text(rng)) is None
    got = index.query_many([edited(rng, bases[11], 2), text(rng), bases[49]])
    assert got[0][0] == "a11" and got[1] is None and got[2] == ("a49", 1.0)
    if exact:  # a pair at 0.4 never counts
        far = edited(rng, bases[20], 12)
        assert exact_j(far, bases[20]) < 0.5
        assert index.query(far) is None


def test_index_returns_the_most_similar():
    rng = random.Random(10)
    a = text(rng)
    b = edited(rng, a, 2)
    index = NearDuplicateIndex()
    index.add_many(["far", "near"], [edited(rng, a, 3), b])
    query = b + " tail"
    got = index.query(query)
    assert got is not None and got[0] == "near"


# -- the command -----------------------------------------------------------------------------
def cli():
    app = typer.Typer()
    app.command()(dedup_command)
    return app


def write_jsonl(path: Path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def sample_rows():
    rng = random.Random(11)
    a, b = text(rng), text(rng)
    return [
        {"id": "x1", "instruction": a, "solution": "s1", "score": 0.2, "tests": ["t"]},
        {"id": "x2", "instruction": edited(rng, a, 1), "solution": "s2", "score": 0.9,
         "tests": []},
        {"id": "x3", "instruction": b, "solution": "s3", "score": 0.1, "tests": []},
        {"id": "x4", "instruction": b.lower() + " .", "solution": "s4", "score": 0.0,
         "tests": []},
    ]


def test_cli_on_jsonl(tmp_path):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out" / "kept.jsonl"
    write_jsonl(src, sample_rows())
    res = CliRunner().invoke(cli(), [str(src), "--out", str(dst)])
    assert res.exit_code == 0, res.output
    lines = dst.read_text().splitlines()
    assert lines == src.read_text().splitlines()[0:1] + src.read_text().splitlines()[2:3]
    report = json.loads((tmp_path / "out" / "kept.jsonl.dedup.json").read_text())
    assert report["counts"] == {"rows": 4, "exact": 1, "near": 1, "kept": 2, "clusters": 2}
    assert report["input"] == str(src) and report["params"]["bands"] == 16
    assert "read" in report["seconds"] and "write" in report["seconds"]
    assert "kept 2 of 4 rows" in res.output
    res = CliRunner().invoke(cli(), [str(src), "--out", str(dst), "--keep", "score"])
    assert res.exit_code == 0, res.output
    assert [json.loads(x)["id"] for x in dst.read_text().splitlines()] == ["x2", "x3"]


def test_cli_on_parquet(tmp_path):
    rows = sample_rows()
    src = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(rows), src)
    dst = tmp_path / "kept.parquet"
    res = CliRunner().invoke(cli(), [str(src), "--out", str(dst), "--field", "both"])
    assert res.exit_code == 0, res.output
    table = pq.read_table(dst)
    assert table.schema == pq.read_table(src).schema
    assert table.column("id").to_pylist() == ["x1", "x3"]
    assert json.loads((tmp_path / "kept.parquet.dedup.json").read_text())["field"] == "both"
    # across formats, both ways
    res = CliRunner().invoke(cli(), [str(src), "--out", str(tmp_path / "k.jsonl")])
    assert res.exit_code == 0, res.output
    assert [json.loads(x)["id"] for x in (tmp_path / "k.jsonl").read_text().splitlines()] \
        == ["x1", "x3"]
    jsrc = tmp_path / "in.jsonl"
    write_jsonl(jsrc, rows)
    res = CliRunner().invoke(cli(), [str(jsrc), "--out", str(tmp_path / "k.parquet")])
    assert res.exit_code == 0, res.output
    assert pq.read_table(tmp_path / "k.parquet").column("id").to_pylist() == ["x1", "x3"]


@pytest.mark.parametrize("case, message", [
    ("missing", "no such file"),
    ("badjson", "not JSON"),
    ("nofield", "'instruction' is missing"),
    ("ext", "unknown extension"),
    ("outext", "unknown extension"),
    ("threshold", "--threshold"),
    ("field", "--field"),
    ("noscore", "no row has a numeric"),
    ("parquet", "cannot read"),
])
def test_cli_bad_input_exits_2(tmp_path, case, message):
    src = tmp_path / "in.jsonl"
    write_jsonl(src, sample_rows())
    args = [str(src), "--out", str(tmp_path / "o.jsonl")]
    if case == "missing":
        args[0] = str(tmp_path / "nope.jsonl")
    elif case == "badjson":
        src.write_text('{"id": 1, "instruction": "a"}\n{oops\n')
    elif case == "nofield":
        write_jsonl(src, [{"id": 1, "text": "a"}])
    elif case == "ext":
        (tmp_path / "in.csv").write_text("a,b\n")
        args[0] = str(tmp_path / "in.csv")
    elif case == "outext":
        args[2] = str(tmp_path / "o.txt")
    elif case == "threshold":
        args += ["--threshold", "1.5"]
    elif case == "field":
        args += ["--field", "tests"]
    elif case == "noscore":
        args += ["--keep", "score", "--score", "nothing"]
    elif case == "parquet":
        (tmp_path / "in.parquet").write_text("not parquet")
        args[0] = str(tmp_path / "in.parquet")
    res = CliRunner().invoke(cli(), args)
    assert res.exit_code == 2, res.output
    assert "error:" in res.output and message in res.output
    assert not (tmp_path / "o.jsonl").exists()


# -- planted recall at a modest size ---------------------------------------------------------
def test_planted_near_duplicates_found_at_20k_rows():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from dedup_scale import make_corpus, score
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    corpus = make_corpus(20_000, 0.7, seed=3)
    res = dedup_texts(corpus["texts"], 0.7)
    scores = score(corpus, res.label)
    assert scores["planted_recall"] >= 0.98
    assert scores["exact_recall"] == 1.0
    assert scores["no_exact_copies"]["pair_precision"] >= 0.99
    assert scores["no_exact_copies"]["pair_recall"] >= 0.97
    assert scores["hard_negatives_merged"] <= 0.01
