"""The pure core: the model, errors, policy data, inventory loading, place and adequacy checks.

No I/O library and nothing else of the project: every capability may import it."""
