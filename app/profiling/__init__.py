"""Profiling catalog models from how they really answer: ``switchboard profiles bootstrap``.

- ``suite``: graded prompts (the bundled default suite, or any JSON Lines file in the shared
  calibration shape), the suite version, and stratified samples.
- ``extract`` and ``similarity``: reading a final answer out of a reply; text similarity.
- ``graders``: one deterministic grader per metric, each returning a score in [0, 1] or a skip.
- ``sandbox``: runs model-written Python against unit tests, contained.
- ``judge``: the rubric and the judge-model grading of open-ended prompts.
- ``store``: the append-only answer store that makes a run resumable and incremental.
- ``spend``: cost estimates, output limits per grader, and the budget that reserves before a call.
- ``progress``: the per-model progress display and the closing summary table.
- ``fleet``: the adapters, gateway and local servers a run calls, built as the service does.
- ``output``: ``labelled.jsonl`` and the profiles, rebuilt from every model's stored answers.
- ``bootstrap``: the runner that ties them together (``switchboard profiles bootstrap``).
"""
