"""Learning from labelled data which follow-ups matter: features from scored benchmarks
(`features`), grouped folds (`folds`), the regularised models (`model`), cross-validated
tuning (`tune`), per-follow-up diagnostics (`diagnostics`) and their text reports (`report`)."""
