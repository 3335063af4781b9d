"""Lineage: artifacts, actions, contexts, trial components and their associations; queries;
git commit capture; OpenLineage run events."""
