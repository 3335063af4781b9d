"""Code that runs *inside* a notebook's sandbox: the boot process, the loopback forwarder to the
platform socket, and Jupyter's identity provider. Standard library (and Jupyter) only."""
