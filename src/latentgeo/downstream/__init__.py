"""Downstream performance: the task suites (:mod:`.tasks`), their data (:mod:`.datasets_io`),
metrics (:mod:`.metrics`), precision checks (:mod:`.precision`) and fine-tuning (:mod:`.finetune`)."""
