"""Training the LSTM pair: `loop` (the training loop, read in one sitting), `checkpoints`, `distributed`
(torchrun), `signals` (SIGINT/SIGTERM), and `optim` (Adam, dense and lazy for the k-mer input table)."""
