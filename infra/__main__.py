"""Pulumi's entry point (Pulumi.yaml: ``main: infra/``): load config, build, export."""

import pulumi

from infra import config, program

try:
    _config = config.load()
except config.ConfigError as _error:
    # Pulumi's Python executor (pulumi/pulumi sdk/python/cmd/pulumi-language-python-exec) logs a
    # RunError's message alone and fails the run; any other exception is shown with its traceback.
    raise pulumi.RunError(f"the stack's configuration is not valid:\n{_error}") from None

for _key, _value in program.run(_config).items():
    pulumi.export(_key, _value)
