"""The `gooddetect` command line: a thin click layer over the Python API (no logic of its own)."""

from __future__ import annotations

import logging
import os
import signal
import sys

import click

from . import __version__
from .errors import GooddetectError
from .build import DEFAULT_BACKGROUND_KMER_INPUT, KMER_INPUT_BY_BASES, MAX_EPOCHS, MIN_STEPS
from .windows import MIN_LENGTH, WINDOW_LENGTH

log = logging.getLogger("gooddetect")
THREADS = click.option("--threads", "-t", type=click.IntRange(min=1), default=None,
                       help="CPU threads for the models (torch, OpenMP, BLAS, compiled loops); with 2 or more, "
                            "reading and writing overlap with them, and the two LSTMs train side by side. Default: "
                            "torch's own choice.")
SEED = click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True,
                    help="Random seed (results are deterministic).")
DEVICE = click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")


class _Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler stopping the job), handled like Ctrl-C: outputs in progress are discarded."""


def _on_sigterm(signum, frame):
    raise _Terminated()


class GooddetectGroup(click.Group):
    """Turns the project's errors into one-line messages and interrupts into the usual exit codes."""

    def invoke(self, ctx):
        signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            return super().invoke(ctx)
        except GooddetectError as exc:
            click.echo(f"gooddetect: error: {exc}", err=True)
            ctx.exit(1)
        except _Terminated:
            click.echo("gooddetect: terminated (SIGTERM); no partial output was kept", err=True)
            ctx.exit(143)
        except KeyboardInterrupt as exc:
            checkpoint = getattr(exc, "checkpoint", None)
            resume = f"; checkpoint {checkpoint} (continue with --resume)" if checkpoint else ""
            click.echo(f"gooddetect: interrupted; no partial output was kept{resume}", err=True)
            ctx.exit(128 + getattr(exc, "signum", signal.SIGINT))
        except BrokenPipeError:
            # Reader of our stdout went away (e.g. `| head`): stop quietly, as coreutils do.
            sys.stderr.close()
            ctx.exit(141)
        except OSError as exc:  # disk full, permissions, ... on files opened outside the reader
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"gooddetect: error: {where}{exc.strerror or exc}", err=True)
            ctx.exit(1)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # click's own: usage errors, --help, --version
        except Exception as exc:  # a bug: still one line for the user, the traceback with --verbose
            log.debug("internal error", exc_info=True)
            click.echo(f"gooddetect: internal error: {type(exc).__name__}: {exc} (a bug: please report it with the "
                       "command line; --verbose shows where it happened)", err=True)
            ctx.exit(1)


@click.group(cls=GooddetectGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="gooddetect")
@click.option("--quiet", "-q", is_flag=True, help="Only errors on stderr.")
@click.option("--verbose", "-v", is_flag=True, help="Debug messages on stderr.")
def main(quiet: bool, verbose: bool) -> None:
    """Flag sequencing reads from organisms the model was not trained on, with the likelihood ratio of
    a foreground and a mutated-background generative model (Ren et al. 2019)."""
    level = logging.ERROR if quiet else logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format="gooddetect: %(message)s", stream=sys.stderr, force=True)


@main.command()
@click.argument("inputs", nargs=-1, required=True, metavar="IN...")
@click.option("-o", "--output", default="-", show_default=True, help="Output FASTA ('-' = stdout; .gz compresses).")
@click.option("--length", default=WINDOW_LENGTH, show_default=True, type=click.IntRange(min=2),
              help="Window length (bp).")
@click.option("--stride", default=None, type=click.IntRange(min=1),
              help="Step between windows. Default: the window length (non-overlapping tiling).")
@click.option("--min-length", default=MIN_LENGTH, show_default=True, type=click.IntRange(min=2),
              help="Windows with fewer known bases (reads shorter than this) are left out (counted).")
@click.option("--sample", "sample", type=click.IntRange(min=1), default=None,
              help="Instead of tiling reads, take N random windows from each input genome (indexed FASTA).")
@click.option("--both-strands", is_flag=True, help="Also write the reverse complement of every window.")
@SEED
def windows(inputs, output, length, stride, min_length, sample, both_strands, seed):
    """Cut reads (or genomes, with --sample) into windows, written as FASTA with ids `read:start-end(strand)`.

    Coordinates are 1-based inclusive on the read's forward strand. A window is kept when at least --min-length of
    its bases are known (A/C/G/T); windows left out are counted: this is the paper's data-preparation step."""
    from .api import write_windows

    write_windows(list(inputs), output, length=length, stride=stride, min_length=min_length,
                  sample=sample, both_strands=both_strands, seed=seed)


BATCH = click.option("--batch-size", default=4096, show_default=True, type=click.IntRange(min=1),
                     help="Windows per model call (memory vs speed; results do not depend on it).")


@main.command()
@click.argument("inputs", nargs=-1, required=True, metavar="IN...")
@click.option("-o", "--output", required=True, help="Model file to write (safetensors).")
@click.option("--arch", type=click.Choice(["lstm", "kmer"]), default="lstm", show_default=True,
              help="Model kind of the foreground/background pair.")
@click.option("--length", default=WINDOW_LENGTH, show_default=True, type=click.IntRange(min=2),
              help="Window length (bp) the model scores.")
@click.option("--min-length", default=MIN_LENGTH, show_default=True, type=click.IntRange(min=2),
              help="Fewest known bases of a window that is scored (or trained on).")
@click.option("--windows-per-file", type=click.IntRange(min=1), default=None,
              help="Treat inputs as genomes: sample this many random windows from each (indexed FASTA).")
@click.option("--mutation-rate", default=None, type=click.FloatRange(0, 1),
              help="Background: probability of substituting each base (default: 0.1 for lstm, as in the paper; "
                   "0.3 for kmer, chosen on validation).")
@click.option("--score-strands", default=None, type=click.Choice(["forward", "both"]),
              help="How the model scores a window: as given (the paper) or both (mean over the window and its reverse "
                   "complement; twice the scoring time). Recorded in the model file.  [default: both for lstm, "
                   "forward for kmer]")
@click.option("--stride", default=None, type=click.IntRange(min=1),
              help="lstm: step between training windows of a read (default: length).")
@click.option("--max-windows", type=click.IntRange(min=1), default=None,
              help="lstm: keep a uniform random subset of at most this many training windows.")
@click.option("--both-strands", is_flag=True, default=None,
              help="lstm: also train on the reverse complement of every window (kmer counts both strands anyway).")
@click.option("--val-fraction", default=None, type=click.FloatRange(0, 0.5, min_open=True, max_open=True),
              help="lstm: source windows held out for validation loss / early stopping.  [default: 0.05]")
@click.option("--background-l2", default=None, type=click.FloatRange(min=0),
              help="lstm: background L2 weight on non-bias weights, added to the loss.  [default: 1e-4, the paper's]")
@click.option("--hidden", default=None, type=click.IntRange(1, 8192), help="lstm: hidden size (paper 2000).")
@click.option("--layers", default=None, type=click.IntRange(1, 8), help="lstm: layers.")
@click.option("--dropout", default=None, type=click.FloatRange(0, 1, max_open=True), help="lstm: dropout (paper 0.1).")
@click.option("--embedding", default=None, type=click.IntRange(0, 1024),
              help="lstm: learned input embedding size (0 = one-hot input, as in the paper).")
@click.option("--kmer-input", default=None, type=click.IntRange(0, 11),
              help="lstm: also input a learned embedding of the last K bases (0 = the paper's input only).  [default: by "
                   "training bases: " + ", ".join(f"{k} below {b / 1e6:g} Mb" for b, k in KMER_INPUT_BY_BASES[:-1])
                   + f", else {KMER_INPUT_BY_BASES[-1][1]}]")
@click.option("--background-kmer-input", default=None, type=click.IntRange(0, 11),
              help=f"lstm: the background model's --kmer-input.  [default: {DEFAULT_BACKGROUND_KMER_INPUT}]")
@click.option("--kmer-embedding", default=None, type=click.IntRange(1, 256), help="lstm: width of that embedding.")
@click.option("--lr", default=None, type=click.FloatRange(min=0, min_open=True),
              help="lstm: Adam learning rate (paper 5e-4).")
@click.option("--lr-schedule", default=None, type=click.Choice(["constant", "cosine"]),
              help="lstm: constant (the paper's) or cosine: 2% linear warm-up, then cosine decay to 0.")
@click.option("--train-batch-size", default=None, type=click.IntRange(min=1), help="lstm: windows per step (paper 100).")
@click.option("--epochs", default=None, type=click.IntRange(min=1),
              help="lstm: passes over the training windows.  [default: enough for "
                   f"{MIN_STEPS} optimizer steps, 1 to {MAX_EPOCHS}]")
@click.option("--steps", default=None, type=click.IntRange(min=1),
              help="lstm: optimizer steps per model (overrides --epochs).")
@click.option("--patience", default=None, type=click.IntRange(min=1),
              help="lstm: stop after this many validations without improvement (best weights are kept).")
@click.option("--checkpoint", default=None, help="lstm: checkpoint file (default: OUTPUT.ckpt).")
@click.option("--checkpoint-every", default=None, type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="lstm: seconds of training between checkpoints (also written on SIGINT/SIGTERM).  [default: 300]")
@click.option("--resume", is_flag=True, default=None, help="lstm: continue an interrupted run from its checkpoint.")
@click.option("--bf16", is_flag=True, default=None,
              help="lstm: bfloat16 autocast for the training forward pass (CPUs with AMX/AVX512-BF16, and GPUs).")
@click.option("--device", default=None, help="lstm: auto, cpu, cuda or cuda:N.  [default: auto]")
@click.option("--max-order", default=None, type=click.IntRange(1, 31), help="kmer: highest Markov order.  [default: 14]")
@click.option("--hash-bits", default=None, type=click.IntRange(8, 26),
              help="kmer: size the hashed tables at 2^N buckets of 8 entries (default: counted in 2^24, then halved "
                   "while at most 65% full).")
@click.option("--classes", default=None, type=click.Path(dir_okay=False),
              help="Also train a classifier: TSV read_id<TAB>class for every training read (or a header naming a "
                   "`class` column).")
@click.option("--class-per-file", is_flag=True, help="Also train a classifier: each input file is one class, named "
              "after the file.")
@click.option("--record-classes", is_flag=True, help="Also train a classifier: each read's class is the `class=NAME` "
              "word of its header (TFRecord inputs have their `y`/`label` there).")
@click.option("--classifier", type=click.Choice(["kmer", "convnet"]), default=None,
              help="With classes: kmer (one k-mer Markov chain per class; chosen on validation) or convnet (the "
                   "paper's ConvNet, with its ODIN and Mahalanobis scores).  [default: kmer]")
@click.option("--classifier-order", default=None, type=click.IntRange(1, 12),
              help="kmer classifier: Markov order of each class's chain (memory 4^(order+1) x ~10 bytes per class).  "
                   "[default: 10]")
@click.option("--classifier-filters", default=None, type=click.IntRange(1, 8192),
              help="convnet classifier: convolution filters (the paper: 1000).  [default: 128]")
@click.option("--classifier-width", default=None, type=click.IntRange(1, 250), help="convnet classifier: filter "
              "width (bases).  [default: 20]")
@click.option("--classifier-hidden", default=None, type=click.IntRange(1, 8192), help="convnet classifier: dense "
              "units.  [default: 200]")
@click.option("--classifier-epochs", default=None, type=click.IntRange(min=1), help="convnet classifier: epochs (the "
              "paper: 1).  [default: 3]")
@click.option("--classifier-lr", default=None, type=click.FloatRange(min=0, min_open=True),
              help="convnet classifier: Adam learning rate (the paper: 1e-4).  [default: 1e-3]")
@click.option("--classifier-batch-size", default=None, type=click.IntRange(min=1),
              help="convnet classifier: windows per step (the paper: 100).  [default: 100]")
@THREADS
@SEED
def train(inputs, output, arch, threads, **options):
    """Train the foreground model on IN... and the background model on mutated copies of them, and write both,
    with their config, to one model file. lstm: windows of the reads (or of --windows-per-file random genome
    windows); kmer: every k-mer of every record. IN may be FASTA, FASTQ or TFRecord (the paper's data)."""
    from .build import train as train_api

    train_api(list(inputs), output, kind=arch, threads=threads, **options)


@main.command()
@click.argument("args", nargs=-1, required=True, metavar="[MODEL] READS...")
@click.option("-m", "--model", "model_option", envvar="GOODDETECT_MODEL", show_envvar=True, default=None,
              help="Model file, instead of the first argument.")
@click.option("-o", "--output", default="-", show_default=True,
              help="Output TSV ('-' = stdout; .gz compresses), written atomically.")
@click.option("--paired", "layout", flag_value="paired",
              help="READS are two files, R1 and R2, mates in the same order: one row per fragment.")
@click.option("--interleaved", "layout", flag_value="interleaved",
              help="Each READS file holds R1 and R2 of every fragment, alternating: one row per fragment.")
@click.option("--threshold", default=None, type=float,
              help="Flag reads with score > THRESHOLD (overrides the model's calibration).")
@click.option("--fpr", default=None, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Flag reads at this in-distribution FPR, by read length, from the model's calibration table.")
@click.option("--in-out", default=None, help="Write in-distribution reads here (unchanged records; '#' -> _1/_2 "
              "for pairs; .gz compresses). Unscored reads go here too unless --unscored-out is given.")
@click.option("--ood-out", default=None, help="Write out-of-distribution reads here.")
@click.option("--unscored-out", default=None, help="Write reads without a score (too short, too many N) here.")
@click.option("--bed", default=None, help="Write one BED line per scored window (read, start, end, call, LLR).")
@click.option("--summary", default=None, help="Also write the run's counts as JSON to this file.")
@click.option("--report", default=None, help="Also write a one-glance TSV: OOD fraction per input file.")
@click.option("--multiqc", default=None, metavar="NAME_mqc.json",
              help="Also write the per-input table as MultiQC custom content.")
@click.option("--sample-name", default=None,
              help="MultiQC: one row for the whole run under this name (default: one per input, named after it).")
@click.option("--shard", default=None, callback=lambda ctx, param, value: _parse_shard(value), metavar="I/N",
              help="Score only fragments I, I+N, I+2N, ... (1-based); `gooddetect merge` restores the order.")
@click.option("--stride", default=None, type=click.IntRange(min=1), help="Step between windows (default: window length).")
@click.option("--bf16", is_flag=True, help="lstm: score under bfloat16 autocast (CPUs with AMX or AVX512-BF16).")
@BATCH
@DEVICE
@THREADS
def score(args, model_option, output, layout, threshold, fpr, in_out, ood_out, unscored_out, bed, summary, report,
          multiqc, sample_name, shard, stride, bf16, batch_size, device, threads):
    """Score every read of READS... (FASTA/FASTQ, gz, '-' = stdin): one TSV row per read (or pair), in input order.

    The model is the first argument, or --model / the GOODDETECT_MODEL environment variable (then every argument
    is a reads file). Columns are described in the README."""
    from .api import ReadOutputs, score as score_api
    from .detector import looks_like_model_file

    if model_option and not (len(args) > 1 and looks_like_model_file(args[0])):
        model, reads = model_option, args
    elif len(args) < 2:
        raise click.UsageError("give MODEL and at least one READS file (or set GOODDETECT_MODEL)")
    else:
        model, reads = args[0], args[1:]
    score_api(model, list(reads), output, layout=layout or "single", batch_size=batch_size, stride=stride,
              device=device, threads=threads, summary=summary, report=report, shard=shard, bf16=bf16,
              threshold=threshold, fpr=fpr, read_outputs=ReadOutputs(in_out, ood_out, unscored_out), bed=bed,
              multiqc=multiqc, sample_name=sample_name)


def _parse_shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        index, total = (int(part) for part in value.split("/"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not I/N (e.g. 2/8)") from None
    if not 1 <= index <= total:
        raise click.BadParameter(f"{value!r}: need 1 <= I <= N")
    return index, total


@main.command()
@click.argument("shards", nargs=-1, required=True, metavar="SHARD_TSV...")
@click.option("-o", "--output", default="-", show_default=True, help="Merged TSV ('-' = stdout), written atomically.")
def merge(shards, output):
    """Merge the TSVs of `score --shard 1/N` ... `N/N` (given in that order) back into input order."""
    from .api import merge_shards

    merge_shards(list(shards), output)


def _labeled_sample_options(command):
    for decorator in reversed([
        click.option("--in-dist", "in_dist", multiple=True, help="In-distribution reads (repeatable)."),
        click.option("--ood", multiple=True, help="Out-of-distribution reads (repeatable)."),
        click.option("--labels", default=None, help="TSV read_id<TAB>label (in|ood) for the READS arguments."),
        BATCH, DEVICE, THREADS,
    ]):
        command = decorator(command)
    return command


@main.command()
@click.argument("model", metavar="MODEL")
@click.argument("reads", nargs=-1, metavar="[READS...]")
@click.option("-o", "--output", default=None, help="Calibrated model file to write (default: update MODEL in place, "
              "atomically).")
@click.option("--target-fpr", "rule", flag_value="target_fpr", default=True,
              help="Flag at most FPR of in-distribution reads (default rule; needs only in-distribution reads).")
@click.option("--max-f1", "rule", flag_value="max_f1", help="Threshold maximising F1 (OOD positive).")
@click.option("--youden", "rule", flag_value="youden", help="Threshold maximising TPR - FPR.")
@click.option("--percentile", "rule", flag_value="percentile",
              help="alibi-detect's rule: the P-th percentile of the sample's OOD scores.")
@click.option("--fpr", default=0.05, show_default=True, type=click.FloatRange(0, 1), help="FPR for --target-fpr.")
@click.option("-p", "--perc", default=95.0, show_default=True, type=click.FloatRange(0, 100),
              help="P for --percentile.")
@click.option("--length-aware/--single-threshold", default=None,
              help="Whether score flags each read by the in-distribution score table at its length (default for "
                   "--target-fpr) or by the one threshold (default for the other rules).")
@click.option("--json", "json_out", default=None, help="Also write the calibration report as JSON.")
@_labeled_sample_options
def calibrate(model, reads, output, rule, fpr, perc, length_aware, json_out, in_dist, ood, labels, batch_size, device,
              threads):
    """Choose the OOD threshold on a labeled sample and store it, with a table of in-distribution scores by read
    length, in the model file. Bring in-distribution reads of other isolates of the training organisms (not
    regions of the training genomes); whole sequences (contigs, genomes) calibrate long reads too."""
    from .api import calibrate as calibrate_api
    from .formatting import format_calibration

    value = {"target_fpr": fpr, "percentile": perc}.get(rule)
    report = calibrate_api(model, output, rule=rule, value=value, in_dist=list(in_dist), ood=list(ood),
                           reads=list(reads), labels=labels, length_aware=length_aware, batch_size=batch_size,
                           device=device, threads=threads)
    click.echo(format_calibration(report, output or model), err=True)
    _write_json(json_out, report)


@main.command()
@click.argument("model", metavar="MODEL")
@click.argument("reads", nargs=-1, metavar="[READS...]")
@click.option("--plots", default=None, help="Write PNG histograms and ROC curves into this directory.")
@click.option("--classes", default=None, help="TSV read_id<TAB>class of the in-distribution reads, for the "
              "classifier's accuracy (a `class` column of --labels serves too).")
@click.option("--json", "json_out", default=None, help="Also write the metrics as JSON.")
@_labeled_sample_options
def evaluate(model, reads, plots, classes, json_out, in_dist, ood, labels, batch_size, device, threads):
    """AUROC, AUPRC and FPR at 80/95% TPR (OOD positive) of every score side by side: the foreground likelihood,
    the LLR and, for a model with a classifier, its OOD scores (and its class accuracy)."""
    from .api import evaluate as evaluate_api
    from .formatting import format_metrics_table

    result = evaluate_api(model, in_dist=list(in_dist), ood=list(ood), reads=list(reads), labels=labels,
                          classes=classes, plots=plots, batch_size=batch_size, device=device, threads=threads)
    click.echo(format_metrics_table(result), nl=False)
    _write_json(json_out, result)


@main.command()
@click.argument("model", envvar="GOODDETECT_MODEL", metavar="MODEL")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON.")
def info(model, as_json):
    """Show what a model file records: format, versions, configs, training parameters and statistics, threshold."""
    import json

    from .api import info as info_api
    from .formatting import format_info

    document = info_api(model)
    click.echo(json.dumps(document, indent=2, sort_keys=True) if as_json else format_info(document))


def _write_json(path: str | None, data: dict) -> None:
    if path:
        import json

        from .runtime import atomic_output

        with atomic_output(path) as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")


def run() -> None:
    """The `gooddetect` command: `main`, then exit without Python's interpreter teardown, which spent 0.4-0.9 s
    freeing modules and model tables after every output was complete (outputs are closed by then; the standard
    streams are flushed here)."""
    try:
        main(prog_name="gooddetect")
        status = 0
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away, or stderr closed after a broken pipe
            pass
    os._exit(status)
