"""SST word iAT, ε = 1, seed S, the paper_v2 grid's settings, with adv_neighbor_refresh_steps = N.

    python docs/runs_v2_wiat_cache/run.py N S   (from the repository root; ../shared/data beside it)
"""
import sys

from hf_attn_at.arguments import DataArguments, ModelArguments
from hf_attn_at.experiment import run_experiment
from hf_attn_at.training_args import AdversarialTrainingArguments

n, seed = int(sys.argv[1]), int(sys.argv[2])
training = dict(
    output_dir=f"../runs/wiat_cache/n{n}-seed{seed}", adv_method="word_iat", adv_epsilon=1.0, adv_lambda=1.0,
    seed=seed, paper_optimizer=True, learning_rate=1e-3, adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8,
    weight_decay=1e-5, lr_scheduler_type="constant", per_device_train_batch_size=32, per_device_eval_batch_size=128,
    num_train_epochs=8, eval_strategy="epoch", save_strategy="epoch", save_total_limit=1, load_best_model_at_end=True,
    metric_for_best_model="auc", greater_is_better=True, train_sampling_strategy="group_by_length",
    logging_strategy="epoch", disable_tqdm=True, report_to="none", dataloader_pin_memory=False,
    adv_neighbor_refresh_steps=n,
)
record = run_experiment(
    ModelArguments(word_vectors="glove-6b-50d", embedding_size=None),
    DataArguments(task_name="sst", data_source="local", data_dir="../shared/data"),
    AdversarialTrainingArguments(**training),
)
print(record.metrics["test"], record.agreement)
