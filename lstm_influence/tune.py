"""``python -m lstm_influence.tune …``: the tuning command under its earlier name; see :mod:`lstm_influence.tuning`."""

from lstm_influence.tuning.cli import main

if __name__ == "__main__":
    main()
