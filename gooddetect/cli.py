"""The `gooddetect` command line: a thin click layer over the Python API (no logic of its own)."""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
from typing import Callable

import click
from click.core import ParameterSource

from . import __version__, options
from .commands.count import OPTION_GROUPS as COUNT_OPTIONS
from .commands.score import ScoreOptions
from .commands.screen import ScreenOptions
from .commands.train import OPTION_GROUPS
from .errors import GooddetectError
from .runtime import Runtime
from .scoring import DEFAULT_BATCH_SIZE
from .support import MIN_SUPPORT
from .windows import MIN_LENGTH, WINDOW_LENGTH

log = logging.getLogger("gooddetect")
GC_THRESHOLDS = (100_000, 50, 100)  # the cyclic garbage collector's (CPython's defaults: 700, 10, 10)
THREADS = click.option("--threads", "-t", type=click.IntRange(min=1), default=None,
                       help="CPU threads for the models (torch, compiled loops); with 2 or more, reading and writing "
                            "overlap with them, and the two LSTMs train side by side.  [default: torch's own choice]")
SEED = click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True,
                    help="Random seed (results are deterministic).")
DEVICE = click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
BATCH = click.option("--batch-size", default=DEFAULT_BATCH_SIZE, show_default=True, type=click.IntRange(min=1),
                     help="Windows per model call (memory vs speed; results do not depend on it).")


def _given(ctx: click.Context) -> Callable[[str], bool]:
    """Whether the user gave a parameter (on the command line or through its environment variable)."""
    return lambda name: ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


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
    from .commands.windows import write_windows

    write_windows(list(inputs), output, length=length, stride=stride, min_length=min_length,
                  sample=sample, both_strands=both_strands, seed=seed)


@main.command()
@click.argument("inputs", nargs=-1, required=True, metavar="IN...")
@click.option("-o", "--output", required=True, help="Model file to write (safetensors).")
@options.click_options(*OPTION_GROUPS)
@THREADS
@SEED
@click.pass_context
def train(ctx, inputs, output, threads, seed, **given):
    """Train the foreground model on IN... and the background model on mutated copies of them, and write both,
    with their config, to one model file. lstm: windows of the reads (or of --windows-per-file random genome
    windows); kmer: every k-mer of every record. IN may be FASTA, FASTQ or TFRecord (the paper's data)."""
    from .commands.train import train as train_command

    was_given = _given(ctx)
    train_command(list(inputs), output, seed=seed, runtime=Runtime(threads=threads),
                  **{name: value for name, value in given.items() if was_given(name)})


@main.command()
@click.argument("inputs", nargs=-1, required=True, metavar="GENOMES...")
@click.option("-o", "--output", required=True, help="Count file to write.")
@options.click_options(*COUNT_OPTIONS)
@SEED
@click.pass_context
def count(ctx, inputs, output, seed, **given):
    """Count the k-mers of GENOMES... (FASTA/FASTQ, gz) into a count file, as `train --arch kmer` would: the
    counts of the parts of a reference, each made on its own machine, merge with `train --arch kmer --from-counts
    PART...` into the model of the whole reference, byte for byte."""
    from .commands.count import count as count_command

    was_given = _given(ctx)
    count_command(list(inputs), output, seed=seed, **{k: v for k, v in given.items() if was_given(k)})


@main.command()
@click.argument("args", nargs=-1, metavar="[MODEL] READS...")
@click.option("-m", "--model", "model_option", envvar="GOODDETECT_MODEL", show_envvar=True, default=None,
              help="Model file, instead of the first argument.")
@click.option("-o", "--output", default="-", show_default=True,
              help="Output TSV ('-' = stdout; .gz compresses), written atomically.")
@click.option("--samples", "sheet", default=None, metavar="SHEET.tsv",
              help="Score every sample of this sheet (sample<TAB>R1[<TAB>R2]; two files are a pair) with one model "
                   "load; every output names its sample with {sample}, e.g. -o 'scores/{sample}.tsv'.")
@click.option("--paired", "layout", flag_value="paired",
              help="READS are two files, R1 and R2, mates in the same order: one row per fragment.")
@click.option("--interleaved", "layout", flag_value="interleaved",
              help="Each READS file holds R1 and R2 of every fragment, alternating: one row per fragment.")
@click.option("--shard", default=None, callback=lambda ctx, param, value: _parse_shard(value), metavar="I/N",
              help="Score only fragments I, I+N, I+2N, ... (1-based); `gooddetect merge` restores the order.")
@options.click_options(("", ScoreOptions))
@DEVICE
@THREADS
@click.pass_context
def score(ctx, args, model_option, output, sheet, layout, shard, device, threads, **given):
    """Score every read of READS... (FASTA/FASTQ, gz, '-' = stdin): one TSV row per read (or pair), in input order.

    The model is the first argument, or --model / the GOODDETECT_MODEL environment variable (then every argument
    is a reads file). Columns are described in the README. With --samples, every sample of a sheet instead."""
    from .commands.score import score as score_command, score_samples

    settings = options.build(ScoreOptions, given, _given(ctx), layout=layout or "single", shard=shard)
    runtime = Runtime(threads=threads, device=device)
    if sheet:
        if len(args) > (0 if model_option else 1):
            raise click.UsageError("with --samples, give only the MODEL (the sheet names the reads)")
        score_samples(args[0] if args else model_option or "", sheet, output, settings, runtime)
        return
    model, reads = _model_and_inputs(model_option, args)
    score_command(model, reads, output, settings, runtime)


@main.command()
@click.argument("args", nargs=-1, required=True, metavar="[MODEL] SEQS...")
@click.option("-m", "--model", "model_option", envvar="GOODDETECT_MODEL", show_envvar=True, default=None,
              help="Model file, instead of the first argument.")
@click.option("-o", "--output", default="-", show_default=True,
              help="Report TSV, one row per sequence ('-' = stdout; .gz compresses), written atomically.")
@options.click_options(("", ScreenOptions))
@THREADS
@click.pass_context
def screen(ctx, args, model_option, output, threads, **given):
    """Find the foreign ranges of every sequence of SEQS... (contigs, scaffolds, long reads; FASTA/FASTQ, gz, '-' =
    stdin) and give each an action: PASS, TRIM (foreign ranges to cut), EXCLUDE (mostly foreign) or REVIEW (too
    short to judge, or only foreign stretches shorter than --min-range)."""
    from .commands.screen import screen as screen_command

    model, sequences = _model_and_inputs(model_option, args)
    screen_command(model, sequences, output, options.build(ScreenOptions, given, _given(ctx)),
                   Runtime(threads=threads, device="cpu"))


def _model_and_inputs(model_option: str | None, args: tuple[str, ...]) -> tuple[str, list[str]]:
    """The model (the first argument, or --model / GOODDETECT_MODEL when the first argument is no model file) and
    the input files."""
    from .detector import looks_like_model_file

    if model_option and not (len(args) > 1 and looks_like_model_file(args[0])):
        return model_option, list(args)
    if len(args) < 2:
        raise click.UsageError("give MODEL and at least one input file (or set GOODDETECT_MODEL)")
    return args[0], list(args[1:])


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
    from .commands.merge import merge_shards

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
@click.option("--min-support", default=MIN_SUPPORT, show_default=True, type=click.FloatRange(0, 1),
              help="Models with a support table: call a read foreign when less than this fraction of its minimizers "
                   "is in the references (stored; score --min-support overrides it).")
@click.option("--json", "json_out", default=None, help="Also write the calibration report as JSON.")
@_labeled_sample_options
def calibrate(model, reads, output, rule, fpr, perc, length_aware, min_support, json_out, in_dist, ood, labels,
              batch_size, device, threads):
    """Choose the OOD threshold on a labeled sample and store it, with a table of in-distribution scores by read
    length, in the model file. Bring in-distribution reads of other isolates of the training organisms (not
    regions of the training genomes); whole sequences (contigs, genomes) calibrate long reads too."""
    from .commands.calibrate import calibrate as calibrate_api
    from .formatting import format_calibration

    value = {"target_fpr": fpr, "percentile": perc}.get(rule)
    report = calibrate_api(model, output, rule=rule, value=value, in_dist=list(in_dist), ood=list(ood),
                           reads=list(reads), labels=labels, length_aware=length_aware, min_support=min_support,
                           batch_size=batch_size, runtime=Runtime(threads=threads, device=device))
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
    from .commands.evaluate import evaluate as evaluate_api
    from .formatting import format_metrics_table

    result = evaluate_api(model, in_dist=list(in_dist), ood=list(ood), reads=list(reads), labels=labels,
                          classes=classes, plots=plots, batch_size=batch_size,
                          runtime=Runtime(threads=threads, device=device))
    click.echo(format_metrics_table(result), nl=False)
    _write_json(json_out, result)


@main.command()
@click.argument("model", envvar="GOODDETECT_MODEL", metavar="MODEL")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON.")
def info(model, as_json):
    """Show what a model file records: format, versions, configs, training parameters and statistics, threshold."""
    import json

    from .commands.info import info as info_api
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
    """The `gooddetect` command: `main`, then exit without Python's interpreter teardown, which only frees modules
    and model tables after every output is complete (outputs are closed by then; the standard streams are flushed
    here). Reads stream through as millions of short-lived record objects; at CPython's default thresholds the
    cyclic garbage collector walks them again and again (a tenth of a run's CPU), so it runs far less often
    (GC_THRESHOLDS; the records hold no reference cycles)."""
    gc.set_threshold(*GC_THRESHOLDS)
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
