"""The HTTPS API: a thin FastAPI shell over the services."""
