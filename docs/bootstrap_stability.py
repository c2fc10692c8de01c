"""How much RESULTS.md's agreement verdicts depend on the paired bootstrap's Monte-Carlo draw.

RESULTS.md decides each agreement verdict with one seeded paired bootstrap (10,000 resamples, seed 0). This script
recomputes the differences to vanilla from the same records with bootstrap seeds 0..K-1, the ε selection and
pairing exactly as `reproduce --grid paper_v2 --aggregate_only` makes them, and prints, as Markdown, every method
whose verdict changes with the seed (how often, and the range of its bounds) and each task's claim-2 verdict.

    python docs/bootstrap_stability.py docs/runs_v2 [K]
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from hf_attn_at.cli.aggregate import load_result, main_epsilon, run_name, selected_epsilons
from hf_attn_at.cli.comparisons import differences, task_verdicts
from hf_attn_at.cli.reproduce import GRIDS


def main(records_dir: str, num_seeds: int) -> int:
    run_dirs = {p.parent.relative_to(records_dir).as_posix(): p.parent
                for p in sorted(Path(records_dir).glob("*/*/seed*/results.json"))}
    results = [load_result(run_dir, name) for name, run_dir in run_dirs.items()]
    selected = selected_epsilons(results, GRIDS["paper_v2"]["epsilons"])
    verdicts: dict[tuple[str, str], list] = {}
    claims: dict[str, Counter] = {}
    for seed in range(num_seeds):
        table = differences(results, run_dirs, lambda task, method: main_epsilon(task, method, selected), run_name,
                            lambda result: result.test_metric("accuracy"), bootstrap_seed=seed)
        for task, methods in table.items():
            for method, intervals in methods.items():
                verdicts.setdefault((task, method), []).append(intervals["pearson"])
        for task, verdict in task_verdicts(table)["claim2"]:
            claims.setdefault(task, Counter())[verdict] += 1
    changed = {key: ivs for key, ivs in verdicts.items() if len({iv.verdict() for iv in ivs}) > 1}
    print(f"{len(run_dirs)} records; bootstrap seeds 0..{num_seeds - 1}: {len(changed)} of "
          f"{len(verdicts)} agreement verdicts change with the seed.\n")
    if changed:
        print("| task | method | verdicts over the seeds | lower bound | upper bound |\n|---|---|---|---|---|")
        for (task, method), ivs in sorted(changed.items()):
            counts = ", ".join(f"{v} {n}" for v, n in Counter(iv.verdict() for iv in ivs).most_common())
            print(f"| {task} | {method} | {counts} | {min(iv.low for iv in ivs):+.5f} … {max(iv.low for iv in ivs):+.5f} "
                  f"| {min(iv.high for iv in ivs):+.5f} … {max(iv.high for iv in ivs):+.5f} |")
    print("\nClaim 2 per task (AT and iAT combined) over the seeds: "
          + "; ".join(f"{task}: " + ", ".join(f"{v} {n}" for v, n in counts.most_common())
                      for task, counts in sorted(claims.items())) + ".")
    return 0


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 20))
