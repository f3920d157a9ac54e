"""Tags (标签): fact tags (a trait's value), rule tags (a rule tree holds), model tags (a model writes values).

`definitions` validates and versions them; `compute` computes fact and rule tags from the per-person
facts (siyu.segments.facts), writes model values and the streaming updates, always with history;
`listener` follows the identity graph; `worker` runs it all on a schedule, on demand and as events
arrive; `reading` answers callers. See docs/segments.md.
"""
