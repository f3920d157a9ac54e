"""Customer-value models (客户价值模型): pure computation over columnar inputs.

Each module is one model and knows nothing of HTTP, SQL sessions or the event store; the inputs
come as numpy arrays or Arrow tables (see `siyu.value.inputs` for the DuckDB SQL that builds them
from `events` + `event_persons`) and the outputs are plain dataclasses of arrays with `to_arrow()`,
so the API, the console and the CLI can wire them without knowing the maths.

- `transactions` — the shared order input (person, time, amount), validated once
- `rfm` — recency / frequency / monetary, quintile scores, the eight classic segments, value pyramid
- `clv` — BG/NBD + Gamma-Gamma: P(alive), expected purchases, expected order value, discounted CLV
- `tags` — model tags from those predictions (churn risk 流失风险, predicted value 预测价值)
- `repurchase` — typical repurchase interval per person and category, next date, "due" flag
- `clusters` — k-means on standardised features, k by silhouette, clusters described in words
- `social` — referral (fission 裂变) trees, PageRank, KOC (关键意见消费者) value score
- `basket` — association rules, "bought together", per-person recommendations
- `lookalike` — seed-based lookalike audiences (相似人群扩展) with held-out AUC
- `inputs` — the DuckDB SQL over `events` + `event_persons` (orders, order lines, person features)
- `synthetic` — order histories drawn from the BG/NBD + Gamma-Gamma processes (tests, benchmark)

See docs/value.md.
"""
