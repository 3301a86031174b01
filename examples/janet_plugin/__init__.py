"""A user's plug-ins for lstm_influence, kept outside its package: the JANET cell and strategy, and a dataset."""
