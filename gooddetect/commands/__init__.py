"""One module per command: each owns its options' meaning, its orchestration and its outputs; `gooddetect.cli`
is the click layer over them and `gooddetect.api` re-exports their entry points."""
