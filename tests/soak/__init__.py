"""The chaos soak (soak_run); ``python -m tests.soak`` runs it by hand."""
