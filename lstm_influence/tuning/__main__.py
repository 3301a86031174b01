"""``python -m lstm_influence.tuning strategy=bias_init dataset=financial tune.trials=20``."""

from lstm_influence.tuning.cli import main

main()
