"""Code that runs *inside* a job's sandbox: the agent, which unpacks the code, runs the job's
script and calls the platform through its socket (as a client, through the SDK's session)."""
