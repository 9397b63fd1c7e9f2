"""alibi-detect's LLR at the paper's architecture, timed: run by bench_throughput.py with an interpreter that has
`alibi-detect[tensorflow]` (often a virtual environment of its own: TensorFlow pins its own numpy).

The model is the one alibi-detect's genome example builds: one-hot input, one LSTM layer of `--hidden` units, a
dense head of 4 logits; the background the same with an L2 of 1e-4 on the LSTM's kernel, trained on the windows
mutated by alibi's `mutate_categorical` (rate 0.1). Both are trained by `LLR.fit` (alibi's own training loop,
Adam, batch 100, one epoch) and scored by `LLR.instance_score` (both models). Each timing follows a warm-up call
on a few windows (TensorFlow builds its kernels on first use). alibi's loop runs the models eagerly, one
TensorFlow op at a time; for reference the same two models are also trained and scored compiled, by a step of
the same loss and optimiser under `tf.function` (what alibi's loop would reach compiled). Random 250 bp windows;
prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time

WINDOW = 250
N_BASES = 4
BACKGROUND_L2 = 1e-4
MUTATION_RATE = 0.1
TRAIN_BATCH = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hidden", type=int, required=True)
    parser.add_argument("--train-windows", type=int, required=True)
    parser.add_argument("--score-windows", type=int, required=True)
    parser.add_argument("--score-batch", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import numpy as np
    import tensorflow as tf
    from alibi_detect import __version__ as alibi_version
    from alibi_detect.od import LLR

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    tf.random.set_seed(0)
    rng = np.random.default_rng(0)

    def build(l2: float) -> tf.keras.Model:
        x_in = tf.keras.Input(shape=(WINDOW - 1,))
        x = tf.keras.layers.Lambda(lambda v: tf.one_hot(tf.cast(v, tf.int32), N_BASES))(x_in)
        x = tf.keras.layers.LSTM(args.hidden, return_sequences=True,
                                 kernel_regularizer=tf.keras.regularizers.l2(l2) if l2 else None)(x)
        return tf.keras.Model(x_in, tf.keras.layers.Dense(N_BASES)(x))

    def loss_fn(y, logits):
        return tf.nn.softmax_cross_entropy_with_logits(tf.one_hot(tf.cast(y, tf.int32), N_BASES), logits)

    def log_prob(y, logits):
        return -loss_fn(y, logits)

    od = LLR(threshold=None, model=build(0.0), model_background=build(BACKGROUND_L2), log_prob=log_prob,
             sequential=True)

    def windows(n: int) -> np.ndarray:
        return rng.integers(0, N_BASES, size=(n, WINDOW)).astype(np.int64)

    def fit(n: int) -> float:
        x = windows(n)
        started = time.perf_counter()
        od.fit(x, mutate_fn_kwargs={"rate": MUTATION_RATE, "seed": 0, "feature_range": (0, N_BASES - 1)},
               loss_fn=loss_fn, optimizer=tf.keras.optimizers.Adam(learning_rate=5e-4), epochs=1,
               batch_size=TRAIN_BATCH, verbose=False)
        return time.perf_counter() - started

    def score(n: int) -> float:
        x = windows(n)
        started = time.perf_counter()
        od.instance_score(x, batch_size=args.score_batch)
        return time.perf_counter() - started

    def compiled_fit(n: int) -> float:
        """Seconds to train both models on n windows (batch 100) with a compiled step, after one warm-up step."""
        x = windows(n)
        seconds = 0.0
        for l2 in (0.0, BACKGROUND_L2):
            model, optimizer = build(l2), tf.keras.optimizers.Adam(learning_rate=5e-4)

            @tf.function
            def step(batch):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(loss_fn(batch[:, 1:], model(batch[:, :-1]))) + sum(model.losses)
                optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_weights), model.trainable_weights))

            step(tf.constant(x[:TRAIN_BATCH]))
            started = time.perf_counter()
            for first in range(0, n, TRAIN_BATCH):
                step(tf.constant(x[first:first + TRAIN_BATCH]))
            seconds += time.perf_counter() - started
        return seconds

    def compiled_score(n: int) -> float:
        x = windows(n)
        seconds = 0.0
        for model in (od.dist_s, od.dist_b):
            logp = tf.function(lambda batch, model=model: tf.reduce_sum(log_prob(batch[:, 1:], model(batch[:, :-1])),
                                                                        axis=1))
            logp(tf.constant(x[:args.score_batch]))
            started = time.perf_counter()
            for first in range(0, n, args.score_batch):
                logp(tf.constant(x[first:first + args.score_batch])).numpy()
            seconds += time.perf_counter() - started
        return seconds

    fit(2 * TRAIN_BATCH)
    train_seconds = fit(args.train_windows)
    score(min(args.score_batch, args.score_windows))
    score_seconds = score(args.score_windows)
    compiled_train = compiled_fit(args.train_windows)
    compiled_scoring = compiled_score(args.score_windows)
    print(json.dumps({"alibi_detect": alibi_version, "tensorflow": tf.__version__, "hidden": args.hidden,
                      "train_windows": args.train_windows, "score_windows": args.score_windows,
                      "train_pair_per_s": args.train_windows / train_seconds,
                      "score_per_s": args.score_windows / score_seconds,
                      "compiled_train_pair_per_s": args.train_windows / compiled_train,
                      "compiled_score_per_s": args.score_windows / compiled_scoring}))


if __name__ == "__main__":
    main()
