"""The built-in XGBoost algorithm: the managed XGBoost container's channel, hyperparameter and
``model.tar.gz`` contract. ``train`` is the entry point, ``hyperparameters.validate`` the
submission-time check, ``serve`` loads a model archive safely for batch transform and endpoints."""

# The line the entry point prints once its channels are parsed; the job executor marks the end of
# the job's "Parsing" phase there.
DATA_LOADED = "[strongroom] data loaded in "

# Set by the job agent when it starts the entry point early, so the interpreter and its imports
# overlap the input download: the entry point then waits for a line "go" on stdin (the inputs are
# in place) before it reads anything, and exits without training on anything else (end of file:
# the agent gave up).
WAIT_FOR_INPUTS = "STRONGROOM_WAIT_FOR_INPUTS"

# The name of the built-in XGBoost's checkpoints. Here, not in ``train``, so the job agent can look
# for a checkpoint to resume from without importing XGBoost (a second of CPU on the job's critical
# path, beside the algorithm's own imports of the same libraries).
CHECKPOINT_NAME = "xgboost"
