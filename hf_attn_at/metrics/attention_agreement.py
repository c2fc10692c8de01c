"""🤗 Evaluate metric module: agreement of attention with token importance (Pearson's r, Kendall's τ).

Load it offline with `evaluate.load(hf_attn_at.metric_path("attention_agreement"))`. The numbers are those of
`hf_attn_at.interpret.attention_agreement` (this module calls it).
"""

import datasets
import evaluate

from hf_attn_at.interpret.agreement import attention_agreement

_DESCRIPTION = """\
Per example, Pearson's r and Kendall's τ-b (scipy) between the attention weights and a token importance (e.g.
gradient × input) over that example's valid tokens, summarised over examples. An example with one token or a
constant vector has no correlation: it is counted in `num_nan` and left out of the summaries.
"""

_KWARGS_DESCRIPTION = """
Args:
    attention (`list[list[float]]`): per example, the attention weight of each valid token (no padding);
        examples may have different lengths.
    importance (`list[list[float]]`): per example, the importance of the same tokens (same length as its
        attention row).
Returns:
    `dict[str, float | int]`: `pearson_mean`, `pearson_std`, `pearson_median`, `kendall_mean`, `kendall_std`,
    `kendall_median` over the examples with a correlation, `count` (how many) and `num_nan` (how many without).
Examples:
    >>> metric = evaluate.load(hf_attn_at.metric_path("attention_agreement"))
    >>> metric.compute(attention=[[0.7, 0.2, 0.1], [0.5, 0.5]], importance=[[3.0, 1.0, 2.0], [1.0, 2.0]])
"""

_CITATION = """\
@article{kitada2021attention,
  title={Attention Meets Perturbations: Robust and Interpretable Attention With Adversarial Training},
  author={Kitada, Shunsuke and Iyatomi, Hitoshi},
  journal={IEEE Access}, volume={9}, pages={92974--92985}, year={2021}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class AttentionAgreement(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "attention": datasets.Sequence(datasets.Value("float64")),
                    "importance": datasets.Sequence(datasets.Value("float64")),
                }
            ),
        )

    def _compute(self, attention: list[list[float]], importance: list[list[float]]) -> dict[str, float | int]:
        agreement = attention_agreement(attention, importance)
        pearson, kendall = agreement["pearson_summary"], agreement["kendall_summary"]
        return {
            **{f"pearson_{key}": pearson[key] for key in ("mean", "std", "median")},
            **{f"kendall_{key}": kendall[key] for key in ("mean", "std", "median")},
            "count": pearson["count"],
            "num_nan": pearson["num_nan"],
        }
