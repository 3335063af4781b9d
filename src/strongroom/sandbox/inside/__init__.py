"""Code that runs *inside* a sandbox on behalf of any workload: the Dask cluster of a job or an
explanation run with ``instance_count > 1``. Standard library (and Dask) only."""
