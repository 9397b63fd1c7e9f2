"""Real and realistically simulated reads: the in / novel / foreign calls of `gooddetect score` on short reads and
the actions of `gooddetect screen` on long reads, with Kraken2 and minimap2 from the same genomes side by side.

Short reads (`--short`, default on):
- the real Illumina runs of ../shared/real/short (README there): E. coli K-12 (a training genome's strain: reads
  should be `in`) and an unidentified organism (foreign); each mate file scored as single reads;
- ART reads (`art_illumina -ss HS20 -l 100`, Debian package art-nextgen-simulation-tools, its empirical error model)
  of each in-distribution strain and each foreign genome of the split (`--split dev`, default: `extra_in` strains
  and `extra_ood` genomes; `--split test`, once, for the report: `test_in` and `test_ood`);
- the same reads cut to 31-49 bp (what adapter trimming leaves);
- the windows of other strains (`val_strains_in`, dev) or `test_in` (test), where foreign calls cost novel genes.

Long reads (`--long`): the real runs of ../shared/real/long (README there: ONT R7/R9/R10.4.1, PacBio RS; E. coli
K-12 in distribution, phage lambda and Listeria foreign), PacBio CLR reads simulated by `pbsim` (Debian; its quality
model, mean accuracy 85 and 90 %) and ONT reads by NanoSim-H (PyPI `nanosim-h`; its E. coli R9 1D profile, junk
reads included) from in-distribution strains and foreign genomes of the split. Per set:
`screen`'s foreign bases and reads per action; minimap2 (`-x map-ont`, `map-pb` for PacBio) against the `train`
genomes: unaligned bases and reads under 50 % aligned; Kraken2's unclassified reads.

The model is bench_screen.py's: `train --arch kmer` on the whole `train` genomes (cached in OUT); `--model NAME=PATH`
adds models trained elsewhere (the LSTM pair, say). Every model is calibrated on val_strains_in + val_ood at 5 % FPR.
Kraken2 is built from the same genomes; a read it leaves unclassified counts as foreign. Per set: the share of reads
called in, novel and foreign (unscored reads counted apart), and Kraken2's unclassified share.

Run from the repository root:
    python tests/benchmarks/bench_real.py --out bench_real --kraken2 --long
Writes OUT/real.md and OUT/real.json.
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from gooddetect.seqio import read_sequences

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kraken  # noqa: E402
from bench_screen import BENCH, GENOMES, SHARED, benchmark_parser, model_of, splits  # noqa: E402

REAL = SHARED / "real"
ROLES = {"dev": ("extra_in", "extra_ood", "val_strains_in.fa.gz"), "test": ("test_in", "test_ood", "test_in.fa.gz")}
LONG_GENOMES = {"dev": ("Escherichia_coli_W3110", "Staphylococcus_aureus_JKD6008", "Klebsiella_pneumoniae_1084",
                        "Virus_EBV_sLCL-T12.18", "Clavibacter_michiganensis_CFBP6885"),
                "test": ("Escherichia_coli_EC590", "Staphylococcus_aureus_RF122", "Klebsiella_pneumoniae_MGH78578",
                         "Virus_HSV1_strain17", "Paracoccus_sp_SCN_68-21")}
REAL_LONG = {"in_ecoli_k12_ont_r9.fa.gz": ("in", "map-ont"), "ood_lambda_ont_r7.fq.gz": ("foreign", "map-ont"),
             "ood_lambda_pacbio_rs.fa.gz": ("foreign", "map-pb"), "ood_listeria_ont_r10.fq.gz": ("foreign", "map-ont")}
ACTIONS = ("PASS", "TRIM", "EXCLUDE", "REVIEW")
READS_PER_GENOME = 2000
CALLS = ("in", "novel", "foreign")


def gooddetect(*args) -> None:
    subprocess.run([str(Path(sys.executable).with_name("gooddetect")), "-q", *map(str, args)], check=True)


def art_reads(genome: Path, out: Path, seed: int) -> Path:
    """READS_PER_GENOME 100 bp HiSeq 2000 reads of `genome` (FASTQ at `out`)."""
    if shutil.which("art_illumina") is None:
        sys.exit("simulated sets need the Debian package art-nextgen-simulation-tools")
    fasta = out.with_suffix(".ref.fa")
    with open(fasta, "w") as handle:
        length = 0
        for name, seq in read_sequences(str(genome)):
            handle.write(f">{name}\n{seq}\n")
            length += len(seq)
    fold = READS_PER_GENOME * 100 / length
    subprocess.run(["art_illumina", "-ss", "HS20", "-i", str(fasta), "-l", "100", "-f", f"{fold:.6f}", "-na",
                    "-rs", str(seed), "-o", str(out.with_suffix(""))], check=True, capture_output=True)
    fasta.unlink()
    return out


def trimmed(reads: Path, out: Path, rng: np.random.Generator) -> Path:
    """The reads of `reads` cut to 31-49 bp (a random length each; qualities cut alike)."""
    with open(reads) as source, open(out, "w") as handle:
        lines = source.read().splitlines()
        for i in range(0, len(lines), 4):
            n = int(rng.integers(31, 50))
            handle.write(f"{lines[i]}\n{lines[i + 1][:n]}\n+\n{lines[i + 3][:n]}\n")
    return out


def calls(model: Path, reads: Path, out: Path, threads: int) -> dict:
    """The shares of `reads` called in, novel and foreign (of the scored reads), and the unscored count."""
    tsv = out.with_suffix(".tsv")
    gooddetect("score", model, reads, "-o", tsv, "--threads", threads)
    with open(tsv) as handle:
        called = [row["call"] for row in csv.DictReader(handle, delimiter="\t")]
    scored = [c for c in called if c != "NA"]
    return {**{c: scored.count(c) / len(scored) for c in CALLS}, "reads": len(called),
            "unscored": len(called) - len(scored)}


def unclassified(db: Path, reads: Path, out: Path, threads: int) -> float | None:
    """Kraken2's unclassified share of `reads`; None when it refuses the file (wrapped FASTQ)."""
    try:
        kraken.classify(db, reads, out.with_suffix(".kraken"), threads)
    except subprocess.CalledProcessError:
        return None
    found = kraken.read_output(out.with_suffix(".kraken"))
    return float(np.mean([not classified for classified, _, _ in found.values()]))


def sets(out: Path, split: str, seed: int) -> dict[str, tuple[str, Path]]:
    """Set name -> (truth: in / foreign, reads file)."""
    in_role, ood_role, windows = ROLES[split]
    rng = np.random.default_rng(seed)
    result = {"real E. coli K-12 (Illumina GA)": ("in", _joined(out / "real_in.fq", REAL / "short",
                                                                 "in_ecoli_k12_1K_R")),
              "real unidentified organism (Illumina)": ("foreign", _joined(out / "real_ood.fq", REAL / "short",
                                                                             "ood_unknown_R"))}
    simulated = {"in": [], "foreign": []}
    roles = splits()
    for i, row in enumerate([*roles[in_role], *roles[ood_role]]):
        truth = "in" if row["role"] == in_role else "foreign"
        reads = art_reads(GENOMES / row["file"], out / f"art_{row['file'].split('.')[0]}.fq", seed + i)
        result[f"ART 100 bp: {row['file'].split('.')[0]} ({row['role']})"] = (truth, reads)
        simulated[truth].append(reads)
    for truth, files in simulated.items():
        joined = out / f"art_{truth}.fq"
        joined.write_text("".join(f.read_text() for f in files))
        result[f"ART cut to 31-49 bp: all {truth}"] = (truth, trimmed(joined, out / f"trim_{truth}.fq", rng))
    result[f"windows of other strains ({windows})"] = ("in", BENCH / windows)
    return result


def pbsim_reads(genome: Path, out: Path, accuracy: float, seed: int) -> Path:
    """PacBio CLR reads of `genome` at about 2x depth (at most 300 reads) by pbsim's quality model, as FASTQ."""
    model = Path("/usr/share/pbsim/models/model_qc_clr")
    if shutil.which("pbsim") is None or not model.exists():
        sys.exit("long-read sets need the Debian package pbsim")
    work = out.with_suffix("")
    work.mkdir(exist_ok=True)
    fasta = work / "ref.fa"
    with open(fasta, "w") as handle:
        length = 0
        for name, seq in read_sequences(str(genome)):
            handle.write(f">{name}\n{seq}\n")
            length += len(seq)
    depth = min(2.0, 300 * 6000 / length)
    subprocess.run(["pbsim", "--data-type", "CLR", "--model_qc", str(model), "--depth", f"{depth:.4f}",
                    "--length-mean", "6000", "--accuracy-mean", str(accuracy), "--seed", str(seed),
                    "--prefix", str(work / "sd"), str(fasta)], check=True, capture_output=True)
    with open(out, "w") as handle:
        for part in sorted(work.glob("sd_*.fastq")):
            handle.write(part.read_text())
    shutil.rmtree(work)
    return out


def nanosim_reads(genome: Path, out: Path, seed: int) -> Path:
    """200 ONT reads of `genome` by NanoSim-H's E. coli R9 1D profile (its junk reads, aligned to nothing, kept),
    as FASTA."""
    if shutil.which("nanosim-h") is None:
        sys.exit("ONT sets need NanoSim-H (pip install nanosim-h)")
    fasta = out.with_suffix(".ref.fa")
    with open(fasta, "w") as handle:
        for name, seq in read_sequences(str(genome)):
            handle.write(f">{name}\n{seq}\n")
    subprocess.run(["nanosim-h", "-p", "ecoli_R9_1D", "-n", "200", "-s", str(seed), "-o", str(out.with_suffix("")),
                    str(fasta)], check=True, capture_output=True)
    fasta.unlink()
    out.with_suffix(".errors.txt").unlink()
    return out


def screened(model: Path, reads: Path, out: Path, threads: int) -> dict:
    """`screen`'s foreign bases and reads per action."""
    report = out.with_suffix(".screen.tsv")
    gooddetect("screen", model, reads, "-o", report, "--threads", threads)
    with open(report) as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    bases = sum(int(r["length"]) for r in rows)
    return {"reads": len(rows), "foreign_bases": sum(int(r["foreign_bases"]) for r in rows) / bases,
            **{a: sum(r["action"] == a for r in rows) / len(rows) for a in ACTIONS}}


def mapped(train: Path, reads: Path, preset: str, out: Path, threads: int) -> dict:
    """minimap2's unaligned bases and reads under 50 % aligned (aligned: the union of a read's primary and
    supplementary alignments on it)."""
    if shutil.which("minimap2") is None:
        sys.exit("minimap2 rows need the Debian package minimap2")
    paf = out.with_suffix(".paf")
    subprocess.run(["minimap2", "-x", preset, "-t", str(threads), "-o", str(paf), str(train), str(reads)],
                   check=True, capture_output=True)
    spans: dict[str, list[tuple[int, int]]] = {}
    lengths = {name: len(seq) for name, seq in read_sequences(str(reads))}
    with open(paf) as handle:
        for line in handle:
            fields = line.split("\t")
            if "tp:A:S" not in fields[12:]:
                spans.setdefault(fields[0].split()[0], []).append((int(fields[2]), int(fields[3])))
    aligned = {name: _covered(spans.get(name, [])) for name in lengths}
    total = sum(lengths.values())
    return {"unaligned_bases": 1 - sum(aligned.values()) / total,
            "under_half_aligned": float(np.mean([aligned[n] < lengths[n] / 2 for n in lengths]))}


def _covered(spans: list[tuple[int, int]]) -> int:
    covered, end = 0, 0
    for start, stop in sorted(spans):
        covered += max(0, stop - max(start, end))
        end = max(end, stop)
    return covered


def long_sets(out: Path, split: str, seed: int) -> dict[str, tuple[str, Path, str]]:
    """Set name -> (truth, reads file, minimap2 preset)."""
    result = {f"real {name.split('.')[0]}": (truth, REAL / "long" / name, preset)
              for name, (truth, preset) in REAL_LONG.items()}
    in_role = ROLES[split][0]
    roles = {row["file"].split(".fna")[0]: role for role, rows in splits().items() for row in rows}
    for i, genome in enumerate(LONG_GENOMES[split]):
        truth = "in" if roles[genome] == in_role else "foreign"
        for accuracy in (0.85, 0.9):
            reads = pbsim_reads(GENOMES / f"{genome}.fna.gz", out / f"pbsim_{genome}_{accuracy}.fq", accuracy,
                                seed + i)
            result[f"pbsim CLR {accuracy:.0%}: {genome}"] = (truth, reads, "map-pb")
        reads = nanosim_reads(GENOMES / f"{genome}.fna.gz", out / f"nanosim_{genome}.fa", seed + i)
        result[f"NanoSim-H ONT R9 1D: {genome}"] = (truth, reads, "map-ont")
    return result


def _joined(path: Path, folder: Path, prefix: str) -> Path:
    with open(path, "w") as handle:
        for mate in (1, 2):
            with gzip.open(folder / f"{prefix}{mate}.fq.gz", "rt") as source:
                handle.write(source.read())
    return path


def mixed_run(long: dict) -> dict:
    """One ONT run of mixed isolates, read by read, made of the ONT sets: the real runs and NanoSim-H's reads of the
    in-distribution strains. A read is right when `screen` EXCLUDEs it exactly if it is foreign, when minimap2
    aligns under half of it exactly if it is foreign, and when Kraken2 leaves it unclassified exactly if it is
    foreign (a file Kraken2 refuses makes the whole run refused)."""
    parts = {name: row for name, row in long.items()
             if (name.startswith("real ") and "_ont_" in name) or (name.startswith("NanoSim") and row["truth"] == "in")}
    reads = sum(row["screen"]["reads"] for row in parts.values())

    def right(fraction_called) -> float:
        return sum(row["screen"]["reads"] * (fraction_called(row) if row["truth"] == "foreign"
                                              else 1 - fraction_called(row)) for row in parts.values()) / reads

    result = {"sets": list(parts), "reads": reads, "screen": right(lambda row: row["screen"]["EXCLUDE"]),
              "minimap2": right(lambda row: row["minimap2"]["under_half_aligned"])}
    if all("kraken2" in row for row in parts.values()):
        refused = any(row["kraken2"] is None for row in parts.values())
        result["kraken2"] = None if refused else right(lambda row: row["kraken2"])
    return result


def long_markdown(result: dict) -> str:
    lines = ["| set | truth | reads | screen: foreign bases | PASS / TRIM / EXCLUDE / REVIEW | minimap2: unaligned "
             "bases | reads < 50 % aligned | Kraken2 unclassified |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, row in result["long"].items():
        s, m = row["screen"], row["minimap2"]
        kraken_cell = "" if "kraken2" not in row else "refused" if row["kraken2"] is None else \
            f"{100 * row['kraken2']:.1f}"
        lines.append(f"| {name} | {row['truth']} | {s['reads']} | {100 * s['foreign_bases']:.1f} | "
                     + " / ".join(f"{100 * s[a]:.1f}" for a in ACTIONS)
                     + f" | {100 * m['unaligned_bases']:.1f} | {100 * m['under_half_aligned']:.1f} | {kraken_cell} |")
    mixed = result.get("mixed")
    if mixed:
        kraken_cell = "" if "kraken2" not in mixed else "; Kraken2 refuses one of its files" \
            if mixed["kraken2"] is None else f", Kraken2 {100 * mixed['kraken2']:.1f} %"
        lines += ["", f"One ONT run of mixed isolates ({', '.join(mixed['sets'])}; {mixed['reads']} reads), reads "
                      f"right: screen {100 * mixed['screen']:.1f} %, minimap2 {100 * mixed['minimap2']:.1f} %"
                      f"{kraken_cell}."]
    return "\n".join(lines) + "\n"


def markdown(result: dict) -> str:
    if not result["sets"]:
        return f"# gooddetect on real and simulated long reads — `{result['command']}`\n\n" + long_markdown(result)
    models = list(result["models"])
    lines = [f"# gooddetect score on real and simulated short reads — `{result['command']}`", "",
             "| set | truth | reads | " + " | ".join(f"{m}: in / novel / foreign" for m in models) +
             (" | Kraken2 unclassified |" if result["kraken2"] else " |"),
             "|---|---|---:|" + "---:|" * len(models) + ("---:|" if result["kraken2"] else "")]
    for name, row in result["sets"].items():
        cells = []
        for m in models:
            c = row[m]
            unscored = f" ({c['unscored']} unscored)" if c["unscored"] else ""
            cells.append(" / ".join(f"{100 * c[k]:.1f}" for k in CALLS) + unscored)
        kraken_cell = f" | {100 * row['kraken2']:.1f} |" if "kraken2" in row else " |"
        lines.append(f"| {name} | {row['truth']} | {row[models[0]]['reads']} | " + " | ".join(cells) + kraken_cell)
    if result.get("long"):
        lines += ["", long_markdown(result).rstrip("\n")]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = benchmark_parser(__doc__, seed=11)
    parser.add_argument("--no-short", action="store_true", help="Leave out the short-read sets.")
    parser.add_argument("--long", action="store_true", help="Also screen the long-read sets.")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                        help="Also call the reads with this model (copied, then calibrated like the k-mer model).")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kmer, (train,), classes = model_of(out, args.threads)  # calibrated on val_strains_in + val_ood
    models = {"k-mer": kmer}
    for given in args.model:
        name, path = given.split("=", 1)
        models[name] = out / f"{name}.gdm"
        shutil.copyfile(path, models[name])
        gooddetect("calibrate", models[name], "--in-dist", BENCH / "val_strains_in.fa.gz", "--ood",
                   BENCH / "val_ood.fa.gz", "--threads", args.threads)
    db = out / "kraken_db"
    if args.kraken2 and not (db / "hash.k2d").exists():
        kraken.build_database(db, [str(train)], classes, args.threads)
    result = {"command": " ".join(sys.argv[1:]), "split": args.split, "models": list(models),
              "kraken2": args.kraken2, "sets": {}, "long": {}}
    for i, (name, (truth, reads)) in enumerate(() if args.no_short else sets(out, args.split, args.seed).items()):
        row = {"truth": truth}
        for model_name, model in models.items():
            row[model_name] = calls(model, reads, out / f"set{i}_{model_name}", args.threads)
        if args.kraken2:
            row["kraken2"] = unclassified(db, reads, out / f"set{i}", args.threads)
        result["sets"][name] = row
        print(name, json.dumps(row), file=sys.stderr)
    for i, (name, (truth, reads, preset)) in enumerate(long_sets(out, args.split, args.seed).items() if args.long
                                                       else ()):
        row = {"truth": truth, "screen": screened(kmer, reads, out / f"long{i}", args.threads),
               "minimap2": mapped(train, reads, preset, out / f"long{i}", args.threads)}
        if args.kraken2:
            row["kraken2"] = unclassified(db, reads, out / f"long{i}", args.threads)
        result["long"][name] = row
        print(name, json.dumps(row), file=sys.stderr)
    if result["long"]:
        result["mixed"] = mixed_run(result["long"])
    (out / "real.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "real.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
