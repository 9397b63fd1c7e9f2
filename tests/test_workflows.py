"""Pipeline use (issue 7): the CLI habits pipelines rely on, the shipped Snakemake workflow run for real, and the
Nextflow module's command line and versions.yml (Nextflow itself is not run: only bash on its script/stub text).

Every command runs in one session directory with relative paths, as a pipeline would, on a tiny model trained once."""

from __future__ import annotations

import csv
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import gooddetect

try:
    import yaml
except ImportError:  # PyYAML comes with snakemake; without it the YAML files are checked as text only
    yaml = None

DATA = Path(__file__).resolve().parents[1] / "data"
WORKFLOWS = Path(gooddetect.__file__).parent / "workflows"
MODULES = WORKFLOWS / "nextflow" / "modules" / "gooddetect"
MODULE = MODULES / "score"
BIN_PATH = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
SAMPLES = {"a": "reads/a.fq.gz", "b": "reads/b.fq"}  # a: mixed reads (FASTQ.gz), b: 200 OOD windows as FASTQ
TIMESTAMP = re.compile(rb"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}:\d{2}")


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    if shutil.which("gooddetect", path=BIN_PATH) is None:
        pytest.skip("the gooddetect command is not installed")
    work = tmp_path_factory.mktemp("pipelines")
    (work / "reads").mkdir()
    shutil.copy(DATA / "reads.fq.gz", work / SAMPLES["a"])
    with gzip.open(DATA / "val_ood.fa.gz", "rt") as fasta, open(work / SAMPLES["b"], "w") as fastq:
        lines = fasta.read().splitlines()[:400]
        for header, seq in zip(lines[0::2], lines[1::2]):
            fastq.write(f"@{header[1:]}\n{seq}\n+\n{'I' * len(seq)}\n")
    (work / "samples.tsv").write_text("sample\tpath\n" + "".join(f"{s}\t{p}\n" for s, p in SAMPLES.items()))
    return work


def gooddetect_cli(work: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`gooddetect args...` run in `work`, as a pipeline would run it."""
    return gooddetect_parallel(work, [args], env)[0]


def gooddetect_parallel(work: Path, commands: list, env: dict | None = None) -> list[subprocess.CompletedProcess]:
    """Several independent `gooddetect` commands at once (as a workflow manager would run them)."""
    processes = [subprocess.Popen(["gooddetect", *args], cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env={**os.environ, "PATH": BIN_PATH, **(env or {})})
                 for args in commands]
    outputs = [process.communicate(timeout=300) for process in processes]
    return [subprocess.CompletedProcess(p.args, p.returncode, *out) for p, out in zip(processes, outputs)]


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr.decode()
    return result


@pytest.fixture(scope="module")
def model(work) -> str:
    """A tiny calibrated model (16 hidden units, 3-mer input, 20 steps, one thread)."""
    ok(gooddetect_cli(work, "train", str(DATA / "train" / "Escherichia_coli.fa.gz"), "-o", "model.gdm", "--hidden",
                      "16", "--kmer-input", "3", "--steps", "20", "--threads", "1"))
    ok(gooddetect_cli(work, "calibrate", "model.gdm", "--in-dist", str(DATA / "val_in.fa.gz"), "--threads", "1"))
    return "model.gdm"


@pytest.fixture(scope="module")
def reference(work, model) -> dict[str, dict]:
    """Direct `gooddetect score` of each sample: TSV written to stdout, plus --report and --summary."""
    results = gooddetect_parallel(work, [["score", model, reads, "--threads", "1", "--report", f"{sample}.report.tsv",
                                          "--summary", f"{sample}.summary.json"] for sample, reads in SAMPLES.items()])
    runs = {}
    for sample, result in zip(SAMPLES, map(ok, results)):
        runs[sample] = {"tsv": result.stdout, "stderr": result.stderr.decode(),
                        "report": (work / f"{sample}.report.tsv").read_bytes(),
                        "summary": (work / f"{sample}.summary.json").read_bytes()}
    return runs


def tsv_rows(data: bytes) -> list[dict]:
    return list(csv.DictReader(data.decode().splitlines(), delimiter="\t"))


def read_ids(path: Path) -> list[str]:
    with gzip.open(path, "rt") if path.suffix == ".gz" else open(path) as handle:
        return [line[1:].split()[0] for line in handle.read().splitlines()[0::4]]


def ood_fraction(tsv: bytes) -> str:
    flags = [row["is_ood"] for row in tsv_rows(tsv) if row["is_ood"] != "NA"]
    return f"{flags.count('1') / len(flags):.6f}"


# ---- the CLI habits of issue 7 ----

def test_score_writes_only_the_tsv_on_stdout_and_logs_on_stderr(work, reference):
    for sample, reads in SAMPLES.items():
        rows = tsv_rows(reference[sample]["tsv"])
        assert [row["read_id"] for row in rows] == read_ids(work / reads)
        assert all(None not in row.values() and len(row) == 16 for row in rows)
        assert reference[sample]["stderr"].startswith("gooddetect: score: ")
        assert "read_id" not in reference[sample]["stderr"]


@pytest.mark.parametrize("how", ["--model, --threads 2", "GOODDETECT_MODEL"])
def test_scores_are_byte_identical_across_runs_threads_and_model_sources(work, model, reference, how):
    """Against the reference (model as first argument, --threads 1, to stdout): same bytes, written with -o."""
    args, env = {"--model, --threads 2": (["--model", model, "--threads", "2"], None),
                 "GOODDETECT_MODEL": (["--threads", "1"], {"GOODDETECT_MODEL": model})}[how]
    output = "b.{}.tsv".format(re.sub(r"\W+", "_", how).strip("_"))
    result = ok(gooddetect_cli(work, "score", *args, "reads/b.fq", "-o", output, env=env))
    assert result.stdout == b""
    assert (work / output).read_bytes() == reference["b"]["tsv"]


def test_shards_merge_to_the_unsharded_run(work, model, reference):
    shards = [f"b.shard{i}.tsv" for i in (1, 2, 3)]
    for result in gooddetect_parallel(work, [["score", model, "reads/b.fq", "--shard", f"{i}/3", "-o", shard,
                                               "--threads", "1"] for i, shard in enumerate(shards, 1)]):
        ok(result)
    assert [len(tsv_rows((work / shard).read_bytes())) for shard in shards] == [67, 67, 66]
    assert ok(gooddetect_cli(work, "merge", *shards)).stdout == reference["b"]["tsv"]
    result = gooddetect_cli(work, "merge", shards[2], shards[0], shards[1], "-o", "b.misordered.tsv")
    assert result.returncode == 1 and not (work / "b.misordered.tsv").exists()


def test_outputs_hold_no_absolute_paths_or_timestamps(work, reference):
    for sample, run in reference.items():
        for name in ("tsv", "report", "summary"):
            assert str(work).encode() not in run[name] and b"/tmp" not in run[name], (sample, name)
            assert not TIMESTAMP.search(run[name]), (sample, name, TIMESTAMP.search(run[name]))
        assert tsv_rows(run["report"])[0]["input"] == SAMPLES[sample]  # the path as given on the command line


@pytest.mark.parametrize("args, code, message", [
    (["score", "model.gdm", "reads/missing.fq"], 1, "gooddetect: error: reads/missing.fq: no such file"),
    (["score", "missing.gdm", "reads/b.fq"], 1, "gooddetect: error: missing.gdm: no such model file"),
    (["score", "reads/b.fq", "reads/b.fq"], 1, "gooddetect: error: reads/b.fq: not a gooddetect model file"),
    (["score", "reads/b.fq"], 2, "give MODEL and at least one input file"),
    (["score", "model.gdm", "reads/b.fq", "--shard", "3/2"], 2, "need 1 <= I <= N"),
    (["merge", "reads/b.fq"], 1, "gooddetect: error: reads/b.fq: not score TSVs"),
])
def test_errors_exit_non_zero_with_a_message_and_no_output(work, model, args, code, message):
    result = gooddetect_cli(work, *args, "-o", "failed.tsv") if "-o" not in args else gooddetect_cli(work, *args)
    stderr = result.stderr.decode()
    assert result.returncode == code, stderr
    assert message in stderr and "Traceback" not in stderr
    assert result.stdout == b"" and not (work / "failed.tsv").exists()


# ---- the Snakemake workflow ----

def run_snakemake(work: Path, outdir: str, **config) -> Path:
    pytest.importorskip("snakemake")
    config_file = work / f"{outdir}.config.json"
    config_file.write_text(json.dumps({"samples": "samples.tsv", "threads": 1, "outdir": outdir, **config}))
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(WORKFLOWS / "Snakefile"), "--configfile",
                             config_file.name, "--cores", "2", "--quiet"], cwd=work, capture_output=True,
                            timeout=600, env={**os.environ, "PATH": BIN_PATH})
    logs = "".join(f"\n--- {p}\n{p.read_text()}" for p in sorted((work / outdir).glob("logs/**/*.log")))
    assert result.returncode == 0, result.stderr.decode()[-3000:] + logs
    return work / outdir


@pytest.fixture(scope="module", params=[1, 2], ids=["unsharded", "2 shards"])
def workflow_run(request, work, model) -> tuple[Path, int]:
    return run_snakemake(work, f"shards{request.param}", model=model, shards=request.param), request.param


def test_workflow_screens_each_assembly_like_a_direct_run(work, model):
    """An assemblies sheet alone (no samples): `screen` per assembly, its outputs those of a direct run."""
    shutil.copy(DATA / "chimera.fa.gz", work / "chimera.fa.gz")
    (work / "assemblies.tsv").write_text("name\tsequences\nchim\tchimera.fa.gz\n")
    out = run_snakemake(work, "screened", model=model, samples="", assemblies="assemblies.tsv")
    direct = ok(gooddetect_cli(work, "screen", model, "chimera.fa.gz", "--threads", "1", "--bed", "direct.bed"))
    assert (out / "screen" / "chim.report.tsv").read_bytes() == direct.stdout
    assert (out / "screen" / "chim.foreign.bed").read_bytes() == (work / "direct.bed").read_bytes()
    assert gzip.decompress((out / "screen" / "chim.clean.fa.gz").read_bytes()).startswith(b">chimera")
    multiqc = json.loads((out / "multiqc" / "chim_screen_mqc.json").read_text())
    assert list(multiqc["data"]) == ["chim"] and multiqc["data"]["chim"]["sequences"] == 1
    assert not (out / "scores").exists() and (out / "versions.yml").is_file()


def test_workflow_builds_a_kmer_reference_in_three_parts(work):
    """`train: shards: 3`: three `count` jobs merged by `train --from-counts`: the model of a direct `train` on all
    the inputs, byte for byte (then calibrated and used as usual)."""
    genomes = sorted(str(p) for p in (DATA / "train").glob("*.fa.gz"))
    train = {"inputs": genomes, "shards": 3, "count_options": "--max-order 10"}
    out = run_snakemake(work, "parts", train=train)
    assert sorted(p.name for p in (out / "model" / "counts").iterdir()) == ["1-of-3.gdc", "2-of-3.gdc", "3-of-3.gdc"]
    ok(gooddetect_cli(work, "train", "--arch", "kmer", *genomes, "--max-order", "10", "-o", "direct.gdm"))
    assert (out / "model" / "model.gdm").read_bytes() == (work / "direct.gdm").read_bytes()
    assert (out / "scores" / "a.tsv").is_file()


def test_workflow_trains_and_calibrates_a_model_when_none_is_given(work):
    """A dry run (training for real is what the model fixture does): the planned jobs and their command lines;
    a sample with two reads files (R1, R2) is scored as pairs."""
    pytest.importorskip("snakemake")
    train = {"inputs": [str(DATA / "train" / "Escherichia_coli.fa.gz")],
             "options": "--hidden 16 --kmer-input 3 --steps 20", "calibrate": [str(DATA / "val_in.fa.gz")]}
    (work / "train.samples.tsv").write_text("a\treads/a.fq.gz\npaired\treads/b.fq\treads/a.fq.gz\n")
    (work / "train.config.json").write_text(json.dumps({"samples": "train.samples.tsv", "threads": 1,
                                                        "train": train}))
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(WORKFLOWS / "Snakefile"), "--configfile",
                             "train.config.json", "--cores", "2", "--dry-run", "--printshellcmds"], cwd=work,
                            capture_output=True, text=True, timeout=120, env={**os.environ, "PATH": BIN_PATH})
    assert result.returncode == 0, result.stderr
    commands = [line.split(": ", 1)[1].split() for line in result.stdout.splitlines()
                if line.startswith("Shell command: gooddetect")]
    assert sorted(command[1] for command in commands) == ["calibrate", "score", "score", "train"]
    assert ["gooddetect", "train", train["inputs"][0], "-o", "results/model/uncalibrated.gdm", "--threads", "1",
            "--hidden", "16", "--kmer-input", "3", "--steps", "20", "2>", "results/logs/train.log"] in commands
    assert ["gooddetect", "calibrate", "results/model/uncalibrated.gdm", "--in-dist", train["calibrate"][0], "-o",
            "results/model/model.gdm", "--json", "results/model/calibration.json", "--threads", "1", "2>",
            "results/logs/calibrate.log"] in commands
    scored = sorted(command[2:command.index("-o")] for command in commands if command[1] == "score")
    assert scored == [["results/model/model.gdm", "reads/a.fq.gz"],
                      ["results/model/model.gdm", "reads/b.fq", "reads/a.fq.gz", "--paired"]]


def test_workflow_refuses_a_sample_with_three_files(work):
    pytest.importorskip("snakemake")
    (work / "three.samples.tsv").write_text("x\treads/a.fq.gz\treads/b.fq\treads/a.fq.gz\n")
    (work / "three.config.json").write_text(json.dumps({"samples": "three.samples.tsv", "model": "model.gdm"}))
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(WORKFLOWS / "Snakefile"), "--configfile",
                             "three.config.json", "--cores", "1", "--dry-run"], cwd=work, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PATH": BIN_PATH})
    assert result.returncode != 0 and "sample<TAB>R1<TAB>R2" in result.stdout + result.stderr


def test_workflow_scores_each_sample_like_a_direct_run(workflow_run, reference):
    out, shards = workflow_run
    assert sorted(p.name for p in (out / "scores").iterdir()) == ["a.tsv", "b.tsv"]
    for sample in SAMPLES:
        assert (out / "scores" / f"{sample}.tsv").read_bytes() == reference[sample]["tsv"], sample
    if shards > 1:
        assert sorted(p.name for p in (out / "shards" / "a").iterdir()) == [
            "1-of-2.report.tsv", "1-of-2.summary.json", "2-of-2.report.tsv", "2-of-2.summary.json"]


def test_workflow_summary_has_each_samples_ood_fraction(workflow_run, reference):
    out, _ = workflow_run
    summary = {row.pop("sample"): row for row in tsv_rows((out / "summary.tsv").read_bytes())}
    assert list(summary) == list(SAMPLES)
    for sample, row in summary.items():
        direct = tsv_rows(reference[sample]["report"])[0]
        direct.pop("input")
        assert row == direct, sample
        assert row["ood_fraction"] == ood_fraction(reference[sample]["tsv"])
    assert summary["a"]["ood_fraction"] != summary["b"]["ood_fraction"]  # each sample's own, not one copied
    multiqc = json.loads((out / "multiqc" / "gooddetect_mqc.json").read_text())
    assert list(multiqc["data"]) == list(SAMPLES) and multiqc["section_name"] == "gooddetect"
    for sample, row in summary.items():
        assert multiqc["data"][sample]["ood_reads"] == int(row["ood_reads"])
        assert multiqc["data"][sample]["reads"] == int(row["reads"])


def test_workflow_records_versions_and_logs(workflow_run):
    out, shards = workflow_run
    assert f"gooddetect: {gooddetect.__version__}\n" in (out / "versions.yml").read_text()
    runs = [f"{s}.{i}-of-{shards}" for s in SAMPLES for i in range(1, shards + 1)] if shards > 1 else list(SAMPLES)
    for run in runs:
        assert (out / "logs" / "score" / f"{run}.log").read_text().startswith("gooddetect: score: ")
    assert {"summary.log", "versions.log"} <= {p.name for p in (out / "logs").iterdir()}
    if shards > 1:
        assert {p.name for p in (out / "logs" / "merge").iterdir()} == {"a.log", "b.log"}


def test_workflow_files_ship_inside_the_package():
    where = subprocess.run([sys.executable, "-c", "import gooddetect, os; print(os.path.dirname(gooddetect.__file__))"],
                           capture_output=True, text=True, check=True).stdout.strip()
    for name in ("Snakefile", "config.yaml", "samples.tsv", "scripts/summarize.py",
                 "nextflow/modules/gooddetect/score/main.nf", "nextflow/modules/gooddetect/score/meta.yml",
                 "nextflow/modules/gooddetect/screen/main.nf", "nextflow/modules/gooddetect/screen/meta.yml"):
        assert (Path(where) / "workflows" / name).is_file(), name


# ---- the Nextflow module: its script and stub run with bash, as Nextflow would after interpolation ----

GROOVY_INTERPOLATION = re.compile(r"\\([\\$])|\$\{([^}]*)\}|\$([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)")


def nextflow_block(section: str, module: Path = MODULE) -> str:
    """The `script:` or `stub:` shell template of main.nf, with its `def` lines checked against nf-core's idiom."""
    text = (module / "main.nf").read_text()
    body = re.search(rf"\n\s*{section}:\n(.*?)\n\s*\"\"\"\n(.*?)\n\s*\"\"\"\n", text, re.S)
    assert body, section
    defs = [line.strip() for line in body.group(1).splitlines() if line.strip()]
    assert "def prefix = task.ext.prefix ?: \"${meta.id}\"" in defs
    assert "def args = task.ext.args ?: ''" in defs
    return body.group(2)


def interpolate(template: str, values: dict[str, str]) -> str:
    """Groovy GString interpolation ($name, ${expr}, \\$, \\\\) and Nextflow's indent stripping."""
    def substitute(match: re.Match) -> str:
        return match.group(1) or values[match.group(2) or match.group(3)]
    return textwrap.dedent(GROOVY_INTERPOLATION.sub(substitute, template))


@pytest.fixture
def task_dir(tmp_path, work, model) -> Path:
    """A Nextflow-like task directory: inputs staged as links under their own names."""
    (tmp_path / "b.fq").symlink_to(work / SAMPLES["b"])
    (tmp_path / "model.gdm").symlink_to(work / model)
    return tmp_path


def run_module(task_dir: Path, section: str, reads: str = "b.fq", layout: str = "", module: str = "score") -> None:
    process = f"GOODDETECT_{module.upper()}"
    values = {"args": "", "prefix": "sample_b", "task.cpus": "1", "task.process": process, "meta.id": "sample_b",
              "model": "model.gdm", "reads": reads, "sequences": reads, "layout": layout}
    script = interpolate(nextflow_block(section, MODULES / module), values)
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=task_dir, capture_output=True,
                            timeout=300, env={**os.environ, "PATH": BIN_PATH})
    assert result.returncode == 0, script + result.stderr.decode()
    versions = (task_dir / "versions.yml").read_text()
    assert versions == f'"{process}":\n    gooddetect: {gooddetect.__version__}\n'
    assert yaml is None or yaml.safe_load(versions) == {process: {"gooddetect": gooddetect.__version__}}


def test_nextflow_module_script_scores_the_reads(task_dir, reference):
    run_module(task_dir, "script")
    assert (task_dir / "sample_b.tsv").read_bytes() == reference["b"]["tsv"]
    report = tsv_rows((task_dir / "sample_b.report.txt").read_bytes())
    assert [row["input"] for row in report] == ["b.fq"]
    assert json.loads((task_dir / "sample_b.summary.json").read_text())["reads"] == 200
    assert sorted(p.name for p in task_dir.glob("*.tsv")) == ["sample_b.tsv"]  # the `scores` glob matches one file
    assert list(json.loads((task_dir / "sample_b_mqc.json").read_text())["data"]) == ["sample_b"]


def test_nextflow_module_scores_pairs_when_not_single_end(task_dir):
    """nf-core's convention: meta.single_end false and two files, R1 and R2."""
    assert "def layout = meta.single_end ? '' : '--paired'" in (MODULE / "main.nf").read_text()
    for mate in (1, 2):
        (task_dir / f"p_{mate}.fq.gz").symlink_to(DATA / f"pairs_R{mate}.fq.gz")
    run_module(task_dir, "script", reads="p_1.fq.gz p_2.fq.gz", layout="--paired")
    rows = tsv_rows((task_dir / "sample_b.tsv").read_bytes())
    assert len(rows) == 500 and all(row["length2"] == "150" for row in rows)


def test_nextflow_module_stub_creates_empty_outputs(task_dir):
    run_module(task_dir, "stub")
    for name in ("sample_b.tsv", "sample_b.report.txt", "sample_b.summary.json", "sample_b_mqc.json"):
        assert (task_dir / name).read_bytes() == b""


def test_nextflow_screen_module_screens_an_assembly(task_dir):
    (task_dir / "chimera.fa.gz").symlink_to(DATA / "chimera.fa.gz")
    run_module(task_dir, "script", reads="chimera.fa.gz", module="screen")
    (row,) = tsv_rows((task_dir / "sample_b.report.tsv").read_bytes())
    assert row["seq_id"] == "chimera" and row["action"] in ("PASS", "TRIM", "EXCLUDE", "REVIEW")
    assert gzip.decompress((task_dir / "sample_b.clean.fa.gz").read_bytes()).startswith(b">chimera")
    assert list(json.loads((task_dir / "sample_b_mqc.json").read_text())["data"]) == ["sample_b"]
    for output in task_dir.glob("sample_b*"):
        output.unlink()
    run_module(task_dir, "stub", reads="chimera.fa.gz", module="screen")
    assert (task_dir / "sample_b.report.tsv").read_bytes() == b"" and (task_dir / "sample_b.foreign.bed").exists()


@pytest.mark.skipif(yaml is None, reason="needs PyYAML")
@pytest.mark.parametrize("module", ["score", "screen"])
def test_nextflow_meta_yml_describes_the_module(module):
    meta = yaml.safe_load((MODULES / module / "meta.yml").read_text())
    main = (MODULES / module / "main.nf").read_text()
    assert meta["name"] == f"gooddetect_{module}" and f"process GOODDETECT_{module.upper()} {{" in main
    assert list(meta["output"]) == re.findall(r"emit: (\w+)", main)
    inputs = [name for entry in meta["input"] for item in (entry if isinstance(entry, list) else [entry])
              for name in item]
    assert inputs == re.findall(r"(?:val|path)\((\w+)\)", main.split("output:")[0])
