"""Team policy attachments and the policy simulator, through the guard (the engine is ``strongroom.policy``)."""
