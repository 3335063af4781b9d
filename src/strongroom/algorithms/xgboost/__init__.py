"""The built-in XGBoost algorithm: the managed XGBoost container's channel, hyperparameter and
``model.tar.gz`` contract. ``train`` is the entry point, ``hyperparameters.validate`` the
submission-time check, ``serve`` loads a model archive safely for batch transform and endpoints."""

# The line the entry point prints once its channels are parsed; the job executor marks the end of
# the job's "Parsing" phase there.
DATA_LOADED = "[strongroom] data loaded in "
