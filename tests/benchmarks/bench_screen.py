"""Screening assemblies and long reads (`gooddetect screen`), with Kraken2 from the same genomes side by side.

The sets are built from ../shared/genomes by their roles (splits.tsv), with a fixed seed:
- chimeric contigs: 60 contigs of 80-240 kb cut from host genomes of the training species' other strains, with 88
  inserts of 1-50 kb (18 of 1 kb) from genomes of other genera (truth: the inserts' coordinates);
- clean assemblies: two host genomes cut into contigs of >= 2 kb (median about 20 kb), no foreign sequence;
- long reads: 400 reads of 3-30 kb from the hosts, a third carrying a 2-15 kb foreign segment, at 0, 5 and 10 %
  errors (half substitutions, a quarter insertions, a quarter deletions).
`--split dev` (default; for choosing settings) takes hosts from `extra_in` and inserts from `val_ood` + `extra_ood`;
`--split test` (once, for the report) hosts from `test_in` and inserts from `test_ood`.

The model is `train --arch kmer` on the whole `train` genomes, calibrated on val_strains_in + val_ood at 5 % FPR
(cached in OUT). Metrics: base-level precision, recall and F1 of the foreign bases; inserts found (>= 50 % of their
bases flagged); median boundary error on inserts >= 2 kb; the fraction of the clean assemblies' bases flagged; per
error rate the long reads' base F1 and segments found. --kraken2 builds a Kraken2 database from the same genomes and
calls a 250 bp tile foreign when Kraken2 leaves it unclassified (the union of such tiles). --penalties sweeps
`screen --penalty`. Speed: a 5 Mb assembly screened end to end (model load included), beside Kraken2 on its tiles,
and the same contigs twenty times (100 Mb).

Run from the repository root:
    python tests/benchmarks/bench_screen.py --out bench_screen --kraken2 --penalties 50,100,200,400
Writes OUT/screen.md and OUT/screen.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from gooddetect.seqio import read_sequences

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kraken  # noqa: E402

SHARED = Path(__file__).resolve().parents[3] / "shared"
BENCH, GENOMES = SHARED / "benchmark", SHARED / "genomes"
ROLES = {"dev": ("extra_in", ("val_ood", "extra_ood")), "test": ("test_in", ("test_ood",))}
INSERT_LENGTHS = [(1000, 1000)] * 18 + [(2000, 5000)] * 18 + [(5000, 15000)] * 18 + [(15000, 30000)] * 18 + \
    [(30000, 50000)] * 16
TILE = 250


def splits() -> dict[str, list[dict]]:
    lines = (GENOMES / "splits.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    rows = [dict(zip(header, line.split("\t"))) for line in lines[1:]]
    return {role: [r for r in rows if r["role"] == role] for role in {r["role"] for r in rows}}


def genome(row: dict) -> list[str]:
    """The records of a genome, upper case."""
    return [seq.upper() for _, seq in read_sequences(str(GENOMES / row["file"]))]


def piece(records: list[str], length: int, rng: np.random.Generator) -> str:
    """A random piece of `length` bases (random strand) without unknown bases, from records long enough."""
    long_enough = [r for r in records if len(r) >= length]
    for _ in range(1000):
        record = long_enough[rng.integers(len(long_enough))]
        start = int(rng.integers(0, len(record) - length + 1))
        seq = record[start:start + length]
        if set(seq) <= set("ACGT"):
            return seq if rng.random() < 0.5 else revcomp(seq)
    raise SystemExit(f"no clean piece of {length} bp")


def revcomp(seq: str) -> str:
    return seq[::-1].translate(str.maketrans("ACGT", "TGCA"))


# -- the sets ----------------------------------------------------------------------------------------------------------


def chimeric_contigs(hosts: list[list[str]], donors: list[list[str]], rng: np.random.Generator) -> list[dict]:
    """60 host contigs with 88 inserts: {"id", "seq", "inserts": [(start, end)]}."""
    lengths = [int(rng.integers(low, high + 1)) for low, high in INSERT_LENGTHS]
    rng.shuffle(lengths)
    per_contig = [2] * 28 + [1] * 32
    contigs, used = [], 0
    for index, count in enumerate(per_contig):
        size = int(rng.integers(80_000, 240_001))
        fitting = [h for h in hosts if max(map(len, h)) >= size]
        host = fitting[index % len(fitting)]
        seq, inserts = piece(host, size, rng), []
        positions = np.sort(rng.choice(np.arange(5_000, size - 5_000), count, replace=False))
        out, at = [], 0
        for position in positions.tolist():
            insert = piece(donors[int(rng.integers(len(donors)))], lengths[used], rng)
            used += 1
            out.append(seq[at:position])
            start = sum(map(len, out))
            out.append(insert)
            inserts.append((start, start + len(insert)))
            at = position
        out.append(seq[at:])
        contigs.append({"id": f"contig_{index:02d}", "seq": "".join(out), "inserts": inserts})
    return contigs


def clean_assembly(records: list[str], name: str, rng: np.random.Generator) -> list[dict]:
    """A genome cut into contigs of at least 2 kb (log-normal lengths, median about 20 kb)."""
    contigs = []
    for r, record in enumerate(records):
        at = 0
        while len(record) - at >= 2000:
            size = max(2000, int(rng.lognormal(np.log(20_000), 1.0)))
            contigs.append({"id": f"{name}_{r}_{at}", "seq": record[at:at + size], "inserts": []})
            at += size
    return contigs


def with_errors(seq: str, rate: float, rng: np.random.Generator) -> str:
    """`seq` with errors at `rate` per base: half substitutions, a quarter insertions, a quarter deletions."""
    if not rate:
        return seq
    codes = np.frombuffer(seq.encode("ascii"), dtype=np.uint8)
    draw, kind = rng.random(len(codes)), rng.random(len(codes))
    other = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, len(codes))]
    substituted = np.where((draw < rate) & (kind < 0.5), np.where(other == codes, np.uint8(ord("A")) + (
        other == ord("A")) * np.uint8(ord("C") - ord("A")), other), codes)  # a different base
    inserted = (draw < rate) & (kind >= 0.5) & (kind < 0.75)
    kept = ~((draw < rate) & (kind >= 0.75))
    repeats = np.where(kept, 1 + inserted, 0)
    out = np.repeat(substituted, repeats)
    slots = np.cumsum(repeats) - 1  # the inserted base follows its position's base
    out[slots[inserted & kept]] = other[inserted & kept]
    return out.tobytes().decode("ascii")


def long_reads(hosts: list[list[str]], donors: list[list[str]], rate: float, seed: int) -> list[dict]:
    """400 reads of 3-30 kb, every third with a 2-15 kb foreign segment; the same reads at every error rate."""
    rng = np.random.default_rng([seed, 11])
    errors = np.random.default_rng([seed, 12, int(rate * 1000)])
    reads = []
    for index in range(400):
        size = int(rng.integers(3000, 30_001))
        host = piece(hosts[index % len(hosts)], size, rng)
        if index % 3 == 0:
            foreign = piece(donors[int(rng.integers(len(donors)))], int(rng.integers(2000, 15_001)), rng)
            cut = int(rng.integers(0, size))
            parts = [with_errors(p, rate, errors) for p in (host[:cut], foreign, host[cut:])]
            start = len(parts[0])
            reads.append({"id": f"read_{index:03d}", "seq": "".join(parts),
                          "inserts": [(start, start + len(parts[1]))]})
        else:
            reads.append({"id": f"read_{index:03d}", "seq": with_errors(host, rate, errors), "inserts": []})
    return reads


def write_fasta(path: Path, sequences: list[dict], fastq: bool = False) -> Path:
    with open(path, "w") as handle:
        for s in sequences:
            if fastq:
                handle.write(f"@{s['id']}\n{s['seq']}\n+\n{'5' * len(s['seq'])}\n")
            else:
                handle.write(f">{s['id']}\n{s['seq']}\n")
    return path


# -- calls and metrics -------------------------------------------------------------------------------------------------


def read_bed(path: Path) -> dict[str, list[tuple[int, int]]]:
    ranges: dict[str, list[tuple[int, int]]] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("track"):
            name, start, end = line.split("\t")[:3]
            ranges.setdefault(name, []).append((int(start), int(end)))
    return ranges


def mask(length: int, ranges: list[tuple[int, int]]) -> np.ndarray:
    flags = np.zeros(length, dtype=bool)
    for start, end in ranges:
        flags[start:end] = True
    return flags


def metrics(sequences: list[dict], called: dict[str, list[tuple[int, int]]]) -> dict:
    """Base-level precision, recall, F1; inserts found (>= 50 % flagged); median boundary error (inserts >= 2 kb);
    bases flagged."""
    tp = fp = fn = bases = flagged = 0
    found = inserts = 0
    errors = []
    for s in sequences:
        truth = mask(len(s["seq"]), s["inserts"])
        call = mask(len(s["seq"]), called.get(s["id"], []))
        tp += int((truth & call).sum())
        fp += int((~truth & call).sum())
        fn += int((truth & ~call).sum())
        bases += len(s["seq"])
        flagged += int(call.sum())
        for start, end in s["inserts"]:
            inserts += 1
            found += call[start:end].mean() >= 0.5
            if end - start >= 2000:
                overlapping = [r for r in called.get(s["id"], []) if r[0] < end and r[1] > start]
                if overlapping:
                    errors += [abs(min(r[0] for r in overlapping) - start), abs(max(r[1] for r in overlapping) - end)]
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "inserts": inserts, "inserts_found": int(found),
            "median_boundary_error": float(np.median(errors)) if errors else None,
            "flagged_fraction": flagged / bases if bases else float("nan"), "bases": bases}


def screen(model: Path, fasta: Path, out: Path, threads: int, *extra: str) -> tuple[dict, float, float]:
    """`gooddetect screen` as a subprocess: (ranges by sequence, wall seconds, peak RSS MB)."""
    bed = out.with_suffix(".bed")
    command = [str(Path(sys.executable).with_name("gooddetect")), "-q", "screen", str(model), str(fasta), "-o",
               str(out), "--bed", str(bed), "--threads", str(threads), *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - started
    rss = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
    return read_bed(bed), seconds, rss


def kraken_ranges(db: Path, sequences: list[dict], work: Path, name: str, threads: int) -> tuple[dict, float]:
    """Kraken2 on the sequences' 250 bp tiles: an unclassified tile is foreign (ranges merged)."""
    tiles = work / f"{name}.tiles.fa"
    with open(tiles, "w") as handle:
        for s in sequences:
            for start in range(0, len(s["seq"]), TILE):
                handle.write(f">{s['id']}:{start}\n{s['seq'][start:start + TILE]}\n")
    seconds = kraken.classify(db, tiles, work / f"{name}.kraken", threads)
    called: dict[str, list[tuple[int, int]]] = {}
    lengths = {s["id"]: len(s["seq"]) for s in sequences}
    for tile, (classified, _, _) in kraken.read_output(work / f"{name}.kraken").items():
        if not classified:
            seq_id, start = tile.rsplit(":", 1)
            start = int(start)
            called.setdefault(seq_id, []).append((start, min(start + TILE, lengths[seq_id])))
    tiles.unlink()
    return called, seconds


# -- model ---------------------------------------------------------------------------------------------------------------


def model_of(out: Path, threads: int) -> tuple[Path, list[str], dict[str, str]]:
    """The k-mer model of the whole train genomes, calibrated on val_strains_in + val_ood (cached)."""
    train, classes = out / "train_genomes.fa", {}
    with open(train, "w") as handle:
        for row in splits()["train"]:
            for name, seq in read_sequences(str(GENOMES / row["file"])):
                record = f"{row['file'].split('.')[0]}__{name}"
                handle.write(f">{record}\n{seq}\n")
                classes[record] = row["class"]
    model = out / "model.gdm"
    if not model.exists():
        gd = str(Path(sys.executable).with_name("gooddetect"))
        subprocess.run([gd, "-q", "train", "--arch", "kmer", str(train), "-o", str(model), "--threads",
                        str(threads)], check=True)
        subprocess.run([gd, "-q", "calibrate", str(model), "--in-dist", str(BENCH / "val_strains_in.fa.gz"),
                        "--ood", str(BENCH / "val_ood.fa.gz"), "--threads", str(threads)], check=True)
    return model, [str(train)], classes


def markdown(result: dict) -> str:
    lines = [f"# gooddetect screen — `{result['command']}`", "",
             f"split `{result['split']}`: hosts from `{result['hosts']}`, inserts from {result['donors']}", ""]
    lines += ["| set | method | precision | recall | F1 | inserts found | median boundary error | bases flagged |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, rows in result["sets"].items():
        for method, m in rows.items():
            error = "" if m.get("median_boundary_error") is None else f"{m['median_boundary_error']:.0f} bp"
            found = f"{m['inserts_found']}/{m['inserts']}" if m["inserts"] else ""
            lines.append(f"| {name} | {method} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | "
                         f"{found} | {error} | {100 * m['flagged_fraction']:.2f} % |")
    if result.get("speed"):
        lines += ["", "| speed, 2 threads, loading included | seconds | peak RSS |", "|---|---:|---:|"]
        for name, row in result["speed"].items():
            rss = f"{row['rss_mb']:.0f} MB" if row.get("rss_mb") else ""
            lines.append(f"| {name} | {row['seconds']:.2f} | {rss} |")
    return "\n".join(lines) + "\n"


def benchmark_parser(doc: str, seed: int) -> argparse.ArgumentParser:
    """The options every benchmark on the genome splits takes: output folder, split, threads, seed, Kraken2."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--split", choices=ROLES, default="dev")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=seed)
    parser.add_argument("--kraken2", action="store_true")
    return parser


def main() -> int:
    parser = benchmark_parser(__doc__, seed=7)
    parser.add_argument("--penalties", default="", help="Comma-separated screen --penalty values to sweep.")
    parser.add_argument("--errors", default="0,0.05,0.1", help="Long-read error rates.")
    parser.add_argument("--no-long-reads", action="store_true")
    parser.add_argument("--screen-args", default="", help="Extra screen options, space-separated.")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    roles = splits()
    host_role, donor_roles = ROLES[args.split]
    hosts = [genome(r) for r in roles[host_role]]
    donors = [genome(r) for role in donor_roles for r in roles[role]]
    rng = np.random.default_rng(args.seed)
    complete = sorted(hosts, key=lambda h: -sum(map(len, h)))[:2]  # the two largest hosts
    sets = {"chimeric contigs": chimeric_contigs(hosts, donors, rng),
            "clean assemblies": clean_assembly(complete[0], "a", rng) + clean_assembly(complete[1], "b", rng)}
    if not args.no_long_reads:
        for rate in (float(r) for r in args.errors.split(",")):
            sets[f"long reads, {rate:.0%} errors"] = long_reads(hosts, donors, rate, args.seed)
    model, train_files, classes = model_of(out, args.threads)
    result = {"command": " ".join(sys.argv[1:]), "split": args.split, "hosts": host_role,
              "donors": ", ".join(f"`{d}`" for d in donor_roles), "sets": {}, "speed": {}}
    penalties = [p for p in args.penalties.split(",") if p] or [None]
    extra = args.screen_args.split()
    db = out / "kraken2_db"
    if args.kraken2 and not (db / "hash.k2d").exists():
        kraken.build_database(db, train_files, classes, args.threads)
    for name, sequences in sets.items():
        fastq = name.startswith("long")
        path = write_fasta(out / f"{name.replace(' ', '_').replace(',', '').replace('%', 'pc')}.f{'q' if fastq else 'a'}",
                           sequences, fastq)
        rows = result["sets"].setdefault(name, {})
        for penalty in penalties:
            options = [*extra, *(["--penalty", penalty] if penalty else [])]
            called, seconds, rss = screen(model, path, path.with_suffix(".tsv"), args.threads, *options)
            rows[f"gooddetect screen{' --penalty ' + penalty if penalty else ''}"] = metrics(sequences, called)
        if args.kraken2:
            called, seconds = kraken_ranges(db, sequences, out, path.stem, args.threads)
            rows["Kraken2 (unclassified 250 bp tiles)"] = metrics(sequences, called)
        print(name, json.dumps(rows, indent=1), file=sys.stderr)
    # speed: a 5 Mb assembly (the clean contigs of host a, repeated to 5 Mb)
    assembly = [dict(s, id=f"{s['id']}_{k}") for k in range(10) for s in sets["clean assemblies"]]
    total, five = 0, []
    for s in assembly:
        if total >= 5_000_000:
            break
        five.append(s)
        total += len(s["seq"])
    path = write_fasta(out / "assembly_5mb.fa", five)
    _, seconds, rss = screen(model, path, out / "assembly_5mb.tsv", args.threads)
    result["speed"][f"gooddetect screen, {total / 1e6:.1f} Mb assembly"] = {"seconds": seconds, "rss_mb": rss}
    if args.kraken2:
        _, seconds = kraken_ranges(db, five, out, "assembly_5mb", args.threads)
        result["speed"][f"Kraken2 on its 250 bp tiles, {total / 1e6:.1f} Mb"] = {"seconds": seconds}
    # and 100 Mb: those contigs twenty times
    path = write_fasta(out / "assembly_100mb.fa", [dict(s, id=f"{s['id']}_{k}") for k in range(20) for s in five])
    _, seconds, rss = screen(model, path, out / "assembly_100mb.tsv", args.threads)
    result["speed"][f"gooddetect screen, {20 * total / 1e6:.1f} Mb assembly"] = {"seconds": seconds, "rss_mb": rss}
    path.unlink()
    (out / "screen.json").write_text(json.dumps(result, indent=2))
    (out / "screen.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
