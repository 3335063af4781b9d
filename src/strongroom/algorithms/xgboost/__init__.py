"""The built-in XGBoost algorithm: the managed XGBoost container's channel, hyperparameter and
``model.tar.gz`` contract. ``train`` is the entry point, ``hyperparameters.validate`` the
submission-time check, ``serve`` loads a model archive safely for batch transform and endpoints."""
