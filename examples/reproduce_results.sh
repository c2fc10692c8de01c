#!/usr/bin/env bash
# The first reproduction (random embeddings, ε = 1; now the ablation docs/ablations/random_embeddings/RESULTS.md):
# regenerates it, its figures and model_cards/random_embeddings/ with the CPU protocol of its NOTES.md
# (fewer epochs than docs/METHODS.md#hyper-parameters for SST, 20News, SNLI and MultiNLI; the IMDB grid near the end is best on a GPU).
# Every finished run's small files (metrics, settings, explanations; no weights) are recorded in $RECORDS
# (default docs/runs, committed): recorded runs and run folders under $OUT count as finished and are skipped,
# so the script resumes where it stopped, also on another machine. To retrain everything, point RECORDS at an
# empty folder.
# Usage (repository root): DATA=../shared/data OUT=../runs/paper bash examples/reproduce_results.sh
set -euo pipefail
DATA=${DATA:-../shared/data}
OUT=${OUT:-../runs/paper}
RECORDS=${RECORDS:-docs/runs}
COMMON=(--data_source local --data_dir "$DATA" --output_dir "$OUT" --records_dir "$RECORDS")
SWEEP=(--grid sweep --methods attention_at attention_iat word_at --epsilons 0.01 0.1 10 100)

hf-attn-at reproduce --grid paper --tasks sst 20news --num_train_epochs 4 "${COMMON[@]}"
hf-attn-at reproduce --grid paper --tasks snli mnli --num_train_epochs 3 "${COMMON[@]}"
hf-attn-at reproduce --grid paper --tasks babi1 babi2 --babi_size 1k "${COMMON[@]}"
hf-attn-at reproduce "${SWEEP[@]}" --tasks sst --num_train_epochs 4 "${COMMON[@]}"
hf-attn-at reproduce "${SWEEP[@]}" --tasks babi1 --babi_size 1k "${COMMON[@]}"
hf-attn-at reproduce "${SWEEP[@]}" --tasks snli --num_train_epochs 3 "${COMMON[@]}"
# The rest of the offline tasks at the paper's epochs (docs/METHODS.md#hyper-parameters), two 1-thread runs at a time on a 2-core CPU: bAbI 3 (1k) took
# ~4 CPU-hours (8-12 min per vanilla/attention run, 15-23 min word AT/iAT), bAbI 1 (10k) ~3; IMDB ~11
# (20-23 min per vanilla/attention run, 51 min word AT, ~79 CPU-min word iAT). Best on a GPU.
hf-attn-at reproduce --grid paper --tasks imdb babi3 --babi_size 1k "${COMMON[@]}"
hf-attn-at reproduce --grid paper --tasks babi1 --babi_size 10k "${COMMON[@]}"
hf-attn-at reproduce --grid paper --aggregate_only --results_file docs/ablations/random_embeddings/RESULTS.md \
    --model_cards_dir model_cards/random_embeddings --notes_file docs/ablations/random_embeddings/NOTES.md "${COMMON[@]}"
