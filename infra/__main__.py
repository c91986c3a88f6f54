"""Pulumi's entry point (Pulumi.yaml: ``main: infra/``): load config, build, export."""

import pulumi

from infra import config, placeholders, program

try:
    _config = config.load()
except config.ConfigError as _error:
    # Pulumi's Python executor (pulumi/pulumi sdk/python/cmd/pulumi-language-python-exec) logs a
    # RunError's message alone and fails the run; any other exception is shown with its traceback.
    raise pulumi.RunError(f"the stack's configuration is not valid:\n{_error}") from None

try:
    _outputs = program.run(_config)
except placeholders.PlaceholderError as _error:
    # The example's placeholders, refused before anything is declared (infra/placeholders.py).
    raise pulumi.RunError(str(_error)) from None
except config.ConfigError as _error:
    # Another stack file of the checkout, read by the stack that owns the repository's settings
    # (infra/components/github_repository.py declares every stack's up environment).
    raise pulumi.RunError(f"a stack file of this checkout is not valid:\n{_error}") from None

for _key, _value in _outputs.items():
    pulumi.export(_key, _value)
