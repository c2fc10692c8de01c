"""How far word iAT's cached neighbour lists (`adv_neighbor_refresh_steps = N`) stray from the exact search in real
training, and how many searches they save.

    PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/bench_neighbor_cache.py --data_dir ../shared/data
    PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/bench_neighbor_cache.py --data_dir ../shared/data \\
        --task_name sst --word_vectors glove-6b-50d --refresh_steps 10 50 200 --num_train_epochs 2

Word iAT is trained with the exact search (the reference trajectory: `reproduce --grid paper_v2`'s model and
optimizer, default ε = 1, SST's selected ε). At every step a [`NeighborCache`] per N sees the same batches, step
numbers and current embedding matrix, and the perturbation is recomputed from its lists with the same gradient.
Per N: the share of looked-up ids it searched (its search cost relative to the exact search), the share of token
positions whose neighbour set differs from the exact one, and the relative error ‖r_N − r‖ / ‖r‖ of the batch's
perturbation (mean, 95th percentile, max over steps).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

import torch
from transformers import DataCollatorWithPadding, set_seed

from hf_attn_at import perturbations
from hf_attn_at.arguments import DataArguments, ModelArguments
from hf_attn_at.data import load_data
from hf_attn_at.experiment import build_model
from hf_attn_at.perturbations import DirectionInputs, NeighborCache, Perturbation
from hf_attn_at.trainer import AdversarialTrainer
from hf_attn_at.training_args import AdversarialTrainingArguments


class MeasuringTrainer(AdversarialTrainer):
    """Trains with the exact search; feeds every batch to one cache per N and keeps their lists for `_compare`."""

    def __init__(self, *args, refresh_steps: list[int], **kwargs):
        super().__init__(*args, **kwargs)
        self.refresh_steps = refresh_steps
        self.caches: dict[int, NeighborCache] = {}
        self.cached_ids: dict[int, torch.Tensor] = {}
        self.stats: dict[int, dict[str, list[float]]] = {
            n: {"differs": [], "error": []} for n in refresh_steps
        }

    def _token_neighbors(self, input_ids, embedding_matrix, exclude_ids):
        exact = super()._token_neighbors(input_ids, embedding_matrix, exclude_ids)
        for n in self.refresh_steps:
            cache = self.caches.setdefault(n, NeighborCache(self.args.adv_num_neighbors, exclude_ids, n))
            self.cached_ids[n] = cache.lookup(input_ids, embedding_matrix, self.state.global_step)
            same = exact.sort(dim=-1).values == self.cached_ids[n].sort(dim=-1).values
            valid = input_ids != self.model.config.pad_token_id
            self.stats[n]["differs"].append(float((~same.all(dim=-1))[valid].float().mean()))
        return exact

    def compare(
        self, inputs: DirectionInputs, grad: torch.Tensor, epsilon: float, exact: Perturbation
    ) -> None:
        reference = torch.linalg.vector_norm(exact.delta.double())
        for n in self.refresh_steps:
            cached = WORD_IAT(inputs._replace(neighbor_ids=self.cached_ids[n]), grad, epsilon)
            error = torch.linalg.vector_norm(cached.delta.double() - exact.delta.double()) / reference
            self.stats[n]["error"].append(float(error))


WORD_IAT = perturbations.DIRECTIONS["word_iat"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--task_name", default="sst")
    parser.add_argument("--word_vectors", default="glove-6b-50d")
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--refresh_steps", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--num_train_epochs", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    set_seed(1)
    data_args = DataArguments(task_name=args.task_name, data_source="local", data_dir=args.data_dir)
    data = load_data(data_args, 1)
    model = build_model(ModelArguments(word_vectors=args.word_vectors), data)
    with tempfile.TemporaryDirectory() as output_dir:
        training_args = AdversarialTrainingArguments(
            output_dir=output_dir,
            adv_method="word_iat",
            adv_epsilon=args.epsilon,
            paper_optimizer=True,
            learning_rate=1e-3,
            weight_decay=1e-5,
            per_device_train_batch_size=32,
            num_train_epochs=args.num_train_epochs,
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            seed=1,
            disable_tqdm=True,
            logging_strategy="no",
        )
        trainer = MeasuringTrainer(
            model=model,
            args=training_args,
            train_dataset=data.dataset["train"],
            processing_class=data.tokenizer,
            data_collator=DataCollatorWithPadding(data.tokenizer),
            refresh_steps=args.refresh_steps,
        )

        def measured_word_iat(inputs, grad, epsilon):
            exact = WORD_IAT(inputs, grad, epsilon)
            trainer.compare(inputs, grad, epsilon, exact)
            return exact

        perturbations.DIRECTIONS["word_iat"] = measured_word_iat
        try:
            trainer.train()
        finally:
            perturbations.DIRECTIONS["word_iat"] = WORD_IAT
    steps = len(trainer.stats[args.refresh_steps[0]]["error"])
    print(
        f"task {args.task_name}  vectors {args.word_vectors}  epsilon {args.epsilon}  steps {steps}  "
        f"vocabulary {model.config.vocab_size}  E={model.config.embedding_size}"
    )
    print(
        "| N | ids searched / looked up | positions with another neighbour set | rel. error of r: mean | 95th pct | max |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for n in args.refresh_steps:
        cache, stats = trainer.caches[n], trainer.stats[n]
        errors = sorted(stats["error"])
        print(
            f"| {n} | {cache.num_searched / cache.num_looked_up:.3f} | {statistics.mean(stats['differs']):.4f} | "
            f"{statistics.mean(errors):.4f} | {errors[int(0.95 * (len(errors) - 1))]:.4f} | {errors[-1]:.4f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
