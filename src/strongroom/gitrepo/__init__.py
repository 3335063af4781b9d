"""Team git repositories over smart HTTP (git's own http-backend), and commit lookup."""
