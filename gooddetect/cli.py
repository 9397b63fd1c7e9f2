"""The `gooddetect` command line: a thin click layer over the Python API (no logic of its own)."""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
from dataclasses import asdict
from typing import Callable

import click
from click.core import ParameterSource

from . import __version__, options
from .commands import ModelChoice
from .commands.calibrate import CalibrateOptions
from .commands.count import OPTION_GROUPS as COUNT_OPTIONS
from .commands.evaluate import EvaluateOptions
from .commands.info import InfoOptions
from .commands.merge import MergeOptions
from .commands.score import ScoreFiles, ScoreOptions
from .commands.screen import ScreenOptions, ScreenOutput
from .commands.train import OPTION_GROUPS as TRAIN_OPTIONS, TrainOutput
from .commands.windows import WindowsOptions
from .errors import GooddetectError
from .outputs import checked_paths
from .runtime import Runtime
from .samples import LabeledSample
from .scoring import Batching

log = logging.getLogger("gooddetect")
GC_THRESHOLDS = (100_000, 50, 100)  # the cyclic garbage collector's (CPython's defaults: 700, 10, 10)
THREADS = click.option("--threads", "-t", type=click.IntRange(min=1), default=None,
                       help="CPU threads for the models (torch, compiled loops); with 2 or more, reading and writing "
                            "overlap with them, and the two LSTMs train side by side.  [default: torch's own choice]")
SEED = click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True,
                    help="Random seed (results are deterministic).")
DEVICE = click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")


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
@options.click_options(("", WindowsOptions))
@SEED
@click.pass_context
def windows(ctx, inputs, seed, **given):
    """Cut reads (or genomes, with --sample) into windows, written as FASTA with ids `read:start-end(strand)`.

    Coordinates are 1-based inclusive on the read's forward strand. A window is kept when at least --min-length of
    its bases are known (A/C/G/T); windows left out are counted: this is the paper's data-preparation step."""
    from .commands.windows import write_windows

    write_windows(list(inputs), **asdict(_built(ctx, WindowsOptions, given)), seed=seed)


@main.command()
@click.argument("inputs", nargs=-1, required=True, metavar="IN...")
@options.click_options(("", TrainOutput), *TRAIN_OPTIONS)
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
@options.click_options(("", ModelChoice), ("", ScoreFiles), ("", ScoreOptions), ("", Batching))
@DEVICE
@THREADS
@click.pass_context
def score(ctx, args, device, threads, **given):
    """Score every read of READS... (FASTA/FASTQ, gz, '-' = stdin): one TSV row per read (or pair), in input order.

    The model is the first argument, or --model / the GOODDETECT_MODEL environment variable (then every argument
    is a reads file). Columns are described in the README. With --samples, every sample of a sheet instead."""
    from .commands.score import score as score_command, score_samples

    files, model_option = _built(ctx, ScoreFiles, given), _built(ctx, ModelChoice, given).model
    settings = _built(ctx, ScoreOptions, given, batch_size=_built(ctx, Batching, given).batch_size)
    runtime = Runtime(threads=threads, device=device)
    if files.sheet:
        if len(args) > (0 if model_option else 1):
            raise click.UsageError("with --samples, give only the MODEL (the sheet names the reads)")
        score_samples(args[0] if args else model_option or "", files.sheet, files.output, settings, runtime)
        return
    model, reads = _model_and_inputs(model_option, args)
    score_command(model, reads, files.output, settings, runtime)


@main.command()
@click.argument("args", nargs=-1, required=True, metavar="[MODEL] SEQS...")
@options.click_options(("", ModelChoice), ("", ScreenOutput), ("", ScreenOptions))
@THREADS
@click.pass_context
def screen(ctx, args, threads, **given):
    """Find the foreign ranges of every sequence of SEQS... (contigs, scaffolds, long reads; FASTA/FASTQ, gz, '-' =
    stdin) and give each an action: PASS, TRIM (foreign ranges to cut), EXCLUDE (mostly foreign) or REVIEW (too
    short to judge, or only foreign stretches shorter than --min-range)."""
    from .commands.screen import screen as screen_command

    model, sequences = _model_and_inputs(_built(ctx, ModelChoice, given).model, args)
    screen_command(model, sequences, _built(ctx, ScreenOutput, given).output, _built(ctx, ScreenOptions, given),
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


@main.command()
@click.argument("shards", nargs=-1, required=True, metavar="SHARD_TSV...")
@options.click_options(("", MergeOptions))
@click.pass_context
def merge(ctx, shards, **given):
    """Merge the TSVs of `score --shard 1/N` ... `N/N` (given in that order) back into input order."""
    from .commands.merge import merge_shards

    merge_shards(list(shards), _built(ctx, MergeOptions, given).output)


@main.command()
@click.argument("model", metavar="MODEL")
@click.argument("reads", nargs=-1, metavar="[READS...]")
@options.click_options(("", CalibrateOptions), ("", LabeledSample), ("", Batching))
@DEVICE
@THREADS
@click.pass_context
def calibrate(ctx, model, reads, device, threads, **given):
    """Choose the OOD threshold on a labeled sample and store it, with a table of in-distribution scores by read
    length, in the model file. Bring in-distribution reads of other isolates of the training organisms (not
    regions of the training genomes); whole sequences (contigs, genomes) calibrate long reads too."""
    from .commands.calibrate import calibrate as calibrate_api
    from .formatting import format_calibration

    settings, sample = _built(ctx, CalibrateOptions, given), _built(ctx, LabeledSample, given)
    checked_paths(settings.output, settings.json)
    report = calibrate_api(model, settings.output, rule=settings.rule, value=settings.value, reads=list(reads),
                           **_sample_files(sample), length_aware=settings.length_aware,
                           min_support=settings.min_support, batch_size=_built(ctx, Batching, given).batch_size,
                           runtime=Runtime(threads=threads, device=device))
    click.echo(format_calibration(report, settings.output or model), err=True)
    _write_json(settings.json, report)


@main.command()
@click.argument("model", metavar="MODEL")
@click.argument("reads", nargs=-1, metavar="[READS...]")
@options.click_options(("", EvaluateOptions), ("", LabeledSample), ("", Batching))
@DEVICE
@THREADS
@click.pass_context
def evaluate(ctx, model, reads, device, threads, **given):
    """AUROC, AUPRC and FPR at 80/95% TPR (OOD positive) of every score side by side: the foreground likelihood,
    the LLR and, for a model with a classifier, its OOD scores (and its class accuracy)."""
    from .commands.evaluate import evaluate as evaluate_api
    from .formatting import format_metrics_table

    settings = _built(ctx, EvaluateOptions, given)
    checked_paths(settings.json)
    result = evaluate_api(model, reads=list(reads), **_sample_files(_built(ctx, LabeledSample, given)),
                          classes=settings.classes, plots=settings.plots,
                          batch_size=_built(ctx, Batching, given).batch_size,
                          runtime=Runtime(threads=threads, device=device))
    click.echo(format_metrics_table(result), nl=False)
    _write_json(settings.json, result)


@main.command()
@click.argument("model", envvar="GOODDETECT_MODEL", metavar="MODEL")
@options.click_options(("", InfoOptions))
@click.pass_context
def info(ctx, model, **given):
    """Show what a model file records: format, versions, configs, training parameters and statistics, threshold."""
    import json

    from .commands.info import info as info_api
    from .formatting import format_info

    document = info_api(model)
    as_json = _built(ctx, InfoOptions, given).as_json
    click.echo(json.dumps(document, indent=2, sort_keys=True) if as_json else format_info(document))


def _built(ctx: click.Context, cls, given: dict, **fixed):
    """The options dataclass `cls` from the values the user gave."""
    return options.build(cls, given, _given(ctx), **fixed)


def _sample_files(sample: LabeledSample) -> dict:
    return {"in_dist": list(sample.in_dist), "ood": list(sample.ood), "labels": sample.labels}


def _write_json(path: str | None, data: dict) -> None:
    if path:
        from .outputs import write_json

        write_json(path, data)


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
