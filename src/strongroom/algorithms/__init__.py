"""Built-in algorithms (run inside sandboxes) and the checkpoint helper user scripts share."""
