"""Plug-ins written as a user would, outside the package: a strategy, a GRU in the LSTM's place, a dataset."""
