"""Research probes: one-off experiments on the shipped models, kept runnable so that the
findings quoted in docs/training.md can be reproduced. Not part of the installed package."""
